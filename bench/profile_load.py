"""Where Hearth's time goes when clients outnumber slots: py-spy (with --native) samples
every thread of one Hearth server while `c` streaming clients load it, and the samples are
summed per thread into the parts of the request path (decode, sampling, admission and KV
placement, parking caches in host memory, the hand-off to the event loop, HTTP and JSON).

    python bench/profile_load.py --concurrency 16 --parallel 8 --requests 64

Needs py-spy (the `bench` extra) and the right to ptrace the server (root, or
kernel.yama.ptrace_scope=0). Only 127.0.0.1 is contacted; the load is a fixed number of
requests, and py-spy stops when the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from hearth.core.config import bundled_model_path
from run import RESULTS, Server, commands, end_token_bias, free_port, run_level

# The first rule whose pattern matches a frame of a sample (searched from the leaf up)
# names the part it is counted in; the order puts the narrowest first.
PARTS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern))
    for name, pattern in [
        ("decode: matrix products", r"mul_mat|vec_dot|sgemm|gemm|gemv"),
        ("decode: attention", r"flash_attn|soft_max"),
        ("decode: the rest (OpenMP barriers, other ops)", r"llama_decode|ggml_|GOMP_"),
        ("sampling: sampler chain", r"Sampler\.(sample|pick)|llama_sampler"),
        ("sampling: batch argmax", r"argmax"),
        ("logprobs", r"token_logprob"),
        ("park to host (state copy out)", r"HostCache\.park|llama_state_seq_get"),
        ("load from host (state copy in)", r"HostCache\.load|llama_state_seq_set"),
        ("prefix search / placement", r"common_prefix|best_source|HostCache\.best|_place"),
        ("KV bookkeeping", r"KvCache\.|llama_memory_seq"),
        ("admission", r"_admit|Sampler\.__init__|_expire_waiting|_drop_cancelled"),
        ("text and stop strings", r"OutputText|_on_token|_emit_text|piece"),
        ("hand-off to the event loop", r"_flush|call_soon_threadsafe|_deliver|put_nowait"),
        ("idle: waiting for work", r"Condition\.wait|pthread_cond|SimpleQueue_get"),
        ("idle: event loop polling", r"epoll_wait|epoll_pwait|uv__io_poll"),
        ("JSON", r"orjson|json|dumps|model_dump|serialize"),
        ("HTTP and ASGI", r"uvicorn|starlette|httptools|h11|fastapi|UVStream"),
        ("generation services (events, parsing)", r"hearth/services|hearth/api"),
    ]
]


def part_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in PARTS:
            if pattern.search(frame):
                return name
    return "other"


def summarise(raw: Path) -> dict[str, dict[str, object]]:
    """Samples per thread, split into PARTS, and each thread's top leaf frames."""
    threads: dict[str, Counter[str]] = defaultdict(Counter)
    leaves: dict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = re.sub(r"^thread \(0?x?[0-9a-f]+\): ", "", frames[0])  # one row a name
        threads[thread][part_of(frames[1:])] += int(count)
        leaves[thread][frames[-1]] += int(count)
    out: dict[str, dict[str, object]] = {}
    for thread, parts in sorted(threads.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(parts.values())
        out[thread] = {
            "samples": total,
            "parts": {k: round(100 * v / total, 1) for k, v in parts.most_common()},
            "top_leaves": {k: round(100 * v / total, 1) for k, v in leaves[thread].most_common(8)},
        }
    return out


def render(summary: dict[str, dict[str, object]], min_share: float = 0.5) -> str:
    lines = []
    everything = sum(int(info["samples"]) for info in summary.values())  # type: ignore[call-overload]
    for thread, info in summary.items():
        if int(info["samples"]) < 0.02 * everything:  # type: ignore[call-overload]
            continue
        lines.append(f"\n{thread}: {info['samples']} samples")
        parts = info["parts"]
        assert isinstance(parts, dict)
        for name, share in parts.items():
            if share >= min_share:
                lines.append(f"  {share:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=bundled_model_path())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--ctx-size", type=int, default=16384)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples a second")
    args = parser.parse_args()
    # The venv's own, also when its bin/ is not on PATH (`.venv/bin/python bench/...`).
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install '.[bench]')")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = RESULTS / f"profile-{stamp}.txt"
    bias = end_token_bias(args.model)
    port = free_port()
    argv = commands("hearth", args.model, port, args.threads, args.parallel, args.ctx_size)
    server = Server(argv, port, RESULTS / f"profile-{stamp}.log")
    try:
        server.wait_ready()
        # Warm-up: first requests pay one-off costs (page faults, the template's compile).
        asyncio.run(run_level(server.url, args.concurrency, args.concurrency, 16, bias))
        spy_argv = [spy, "record", "--native", "--threads", "--format", "raw"]
        spy_argv += ["-r", str(args.rate), "-p", str(server.proc.pid), "-o", str(raw)]
        recorder = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        level = asyncio.run(
            run_level(server.url, args.concurrency, args.requests, args.max_tokens, bias)
        )
    finally:
        server.stop()
    _, err = recorder.communicate(timeout=120)
    if not raw.exists():
        raise SystemExit(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")
    summary = summarise(raw)
    payload = {"date": stamp, "args": vars(args) | {"model": str(args.model)}, "level": vars(level)}
    payload["threads"] = summary
    out = RESULTS / f"profile-{stamp}.json"
    out.write_text(json.dumps(payload, indent=2))
    print(f"c={args.concurrency} on {args.parallel} slots: {level.tokens_per_s} tok/s")
    print(render(summary))
    print(f"\nwritten: {out} (raw stacks: {raw})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
