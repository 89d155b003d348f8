"""A pool of engines behind one Hearth (issue #18), measured side by side in one run:

- throughput: the same streaming load (c clients, greedy, end tokens banned) sent to one
  Hearth member alone, then through a front Hearth whose model is an `upstream` pool of
  two Hearth members (the first and a second one like it); ratio pool ÷ alone;
- the proxy hop: time to first token of one request at a time, through the front and
  directly at a member, alternated; the overhead is the median of the differences;
- with --llama-server, the same load through a front whose pool is one llama-server, and
  directly at it (a foreign engine behind the pool).

With --hop-only, each round measures the proxy hop alone (no load first, a few warm-up
requests instead): quick, for work on the front's path. --front-src DIR (repeatable)
starts one front per source tree (say an older checkout's src/ and this one's), all on
the same members, and alternates them with the direct request: before and after a change,
interleaved on the same members in one run.

Every member gets --threads; on a machine with fewer cores than the members need, two
members share the cores one had, so the pool cannot be faster there (the README says so).

    python bench/pool.py [--rounds 2] [--concurrency 16] [--llama-server]
    python bench/pool.py --hop-only [--hop-requests 50] [--front-src OLD/src --front-src src]
    python bench/pool.py --hop-only --pin --threads 1   # members on their own core
    python bench/pool.py --hop-only --stand-in-ms 20    # members that decode nothing

Only 127.0.0.1 is ever contacted; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

from hearth.core.config import bundled_model_path
from run import (
    MODEL_ALIAS,
    RESULTS,
    Server,
    commands,
    end_token_bias,
    free_port,
    machine,
    run_level,
    stream_chat,
)


def pinned(argv: list[str], cpus: set[int] | None) -> list[str]:
    """argv run on `cpus` only (all CPUs when None)."""
    if not cpus:
        return argv
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]


def start(name: str, args: argparse.Namespace, label: str, stack: ExitStack) -> Server:
    port = free_port()
    argv = commands(name, args.model, port, args.threads, args.parallel, args.ctx_size)
    argv = pinned(argv, args.member_cpus)
    server = Server(argv, port, RESULTS / f"pool-{label}.log")
    stack.callback(server.stop)
    server.wait_ready()
    return server


def stand_in(args: argparse.Namespace, label: str, stack: ExitStack) -> Server:
    """A member that answers after --stand-in-ms, decoding nothing (standin_member.py)."""
    port = free_port()
    script = Path(__file__).with_name("standin_member.py")
    argv = pinned([sys.executable, str(script), str(port), str(args.stand_in_ms)], args.member_cpus)
    server = Server(argv, port, RESULTS / f"pool-{label}.log")
    stack.callback(server.stop)
    server.wait_ready()
    return server


def front(
    urls: list[str], args: argparse.Namespace, label: str, stack: ExitStack, src: Path | None = None
) -> Server:
    """A Hearth whose one model is a pool of `urls`; it decodes nothing itself. With `src`,
    the Hearth of that source tree (imported from it first) rather than this one's."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hearth-pool-")))
    members = ", ".join(f'"{url}/v1"' for url in urls)
    config = folder / "hearth.toml"
    config.write_text(
        f'[[models]]\nname = "{MODEL_ALIAS}"\nbackend = "upstream"\nurls = [{members}]\n'
    )
    port = free_port()
    argv = [
        sys.executable, "-m", "hearth", "serve", "--config", str(config), "--port", str(port),
        "--data-dir", str(folder / "data"), "--log-level", "warning",
    ]  # fmt: skip
    argv = pinned(argv, args.front_cpus)
    env = None
    if src is not None:
        paths = [str(src.resolve()), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    server = Server(argv, port, RESULTS / f"pool-{label}.log", env=env)
    stack.callback(server.stop)
    server.wait_ready()
    return server


def load(url: str, args: argparse.Namespace, bias: dict[str, int]) -> dict[str, float]:
    asyncio.run(run_level(url, 2, 2, 8, bias))  # warm-up: loads the model, fills caches
    level = asyncio.run(run_level(url, args.concurrency, args.requests, args.max_tokens, bias))
    return {
        "tokens_per_s": level.tokens_per_s,
        "ttft_p50_ms": level.ttft_p50_ms,
        "errors": level.errors,
    }


async def hop(
    direct: str, fronts: dict[str, str], n: int, bias: dict[str, int], warm: int = 0
) -> dict[str, dict[str, float]]:
    """TTFT one request at a time, alternating a member and each front (by label); per
    front, its TTFT and the median of its differences from the direct request just before.
    `warm` requests to each first, not measured (connections, caches, first-call costs)."""
    where = {"direct": direct, **fronts}
    firsts: dict[str, list[float]] = {label: [] for label in where}
    differences: dict[str, list[float]] = {label: [] for label in fronts}
    async with httpx.AsyncClient(timeout=120) as http:
        for i in range(-warm, n):
            # Fronts in turn first after the direct request, so that none always follows it.
            shift = i % len(fronts)
            order = ["direct", *list(fronts)[shift:], *list(fronts)[:shift]]
            for label, url in ((label, where[label]) for label in order):
                # Each request its own text of the same length: neither side finds the
                # other's prompt in a prefix cache (the template's start both reuse alike).
                text = f"Say a number: {list(where).index(label)}{i % 1000:03d}"
                messages = [{"role": "user", "content": text}]
                first, _, _ = await stream_chat(http, url, messages, 2, bias)
                if i >= 0:
                    firsts[label].append(first)
            for label in fronts if i >= 0 else ():
                differences[label].append(firsts[label][-1] - firsts["direct"][-1])
    direct_p50 = round(statistics.median(firsts["direct"]) * 1000, 2)
    return {
        label: {
            "direct_ttft_p50_ms": direct_p50,
            "front_ttft_p50_ms": round(statistics.median(firsts[label]) * 1000, 2),
            "overhead_p50_ms": round(statistics.median(differences[label]) * 1000, 2),
        }
        for label in fronts
    }


def counts(front_url: str) -> dict[str, int]:
    """A prompt counted through the front (by llama-server's own /apply-template and
    /tokenize) against the prompt tokens its reply's usage reports: equal when exact."""
    messages = [{"role": "user", "content": "Name three colours."}]
    counted = httpx.post(
        f"{front_url}/v1/messages/count_tokens",
        json={"model": MODEL_ALIAS, "messages": messages},
        timeout=60,
    ).json()["input_tokens"]
    reply = httpx.post(
        f"{front_url}/v1/chat/completions",
        json={"model": MODEL_ALIAS, "messages": messages, "max_tokens": 2},
        timeout=60,
    ).json()
    return {"counted": counted, "reply_prompt_tokens": reply["usage"]["prompt_tokens"]}


def one_round(args: argparse.Namespace, round_no: int, bias: dict[str, int]) -> dict:  # type: ignore[type-arg]
    out: dict[str, object] = {"round": round_no}
    with ExitStack() as stack:
        first = start("hearth", args, "member-1", stack)
        out["alone"] = load(first.url, args, bias)
        print(f"[round {round_no}] one member alone: {out['alone']}", flush=True)
        second = start("hearth", args, "member-2", stack)
        pool = front([first.url, second.url], args, "front", stack)
        out["pool"] = load(pool.url, args, bias)
        print(f"[round {round_no}] pool of two:      {out['pool']}", flush=True)
        out["hop"] = asyncio.run(hop(first.url, {"front": pool.url}, args.hop_requests, bias))[
            "front"
        ]
        print(f"[round {round_no}] proxy hop:        {out['hop']}", flush=True)
    if args.llama_server:
        with ExitStack() as stack:
            peer = start("llama-server", args, "llama-server", stack)
            out["llama_server_direct"] = load(peer.url, args, bias)
            foreign = front([peer.url], args, "front-llama-server", stack)
            out["llama_server_pool"] = load(foreign.url, args, bias)
            out["llama_server_counts"] = counts(foreign.url)
            print(
                f"[round {round_no}] llama-server direct {out['llama_server_direct']}, "
                f"through a pool {out['llama_server_pool']}",
                flush=True,
            )
    return out


def hop_round(args: argparse.Namespace, round_no: int, bias: dict[str, int]) -> dict:  # type: ignore[type-arg]
    """The proxy hop alone, through a front per --front-src (or this tree's), to a pool of
    two members as in a full round."""
    with ExitStack() as stack:
        if args.stand_in_ms is not None:
            first = stand_in(args, "member-1", stack)
            second = stand_in(args, "member-2", stack)
        else:
            first = start("hearth", args, "member-1", stack)
            second = start("hearth", args, "member-2", stack)
        sources = args.front_src or [None]
        fronts = {
            str(src or "front"): front([first.url, second.url], args, f"front-{i}", stack, src).url
            for i, src in enumerate(sources)
        }
        found = asyncio.run(hop(first.url, fronts, args.hop_requests, bias, warm=4))
        for label, result in found.items():
            print(f"[round {round_no}] proxy hop {label}: {result}", flush=True)
    return {"round": round_no, "hop": found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=bundled_model_path())
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--ctx-size", type=int, default=8192)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--hop-requests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llama-server", action="store_true")
    parser.add_argument("--hop-only", action="store_true", help="measure the proxy hop alone")
    parser.add_argument(
        "--front-src", type=Path, action="append", help="with --hop-only: a front per src tree"
    )
    parser.add_argument(
        "--stand-in-ms",
        type=float,
        help="with --hop-only: members that answer after this many ms and decode nothing "
        "(the hop alone, not lost in a real member's varying prefill)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="members on the last CPU, the front and this client on the others (members "
        "as other machines: the front never waits for a core their decoding holds)",
    )
    args = parser.parse_args()
    args.member_cpus = args.front_cpus = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs two CPUs or more")
        args.member_cpus, args.front_cpus = {cpus[-1]}, set(cpus[:-1])
        os.sched_setaffinity(0, args.front_cpus)
    RESULTS.mkdir(exist_ok=True)
    bias = end_token_bias(args.model)
    summary: dict[str, object]
    if args.hop_only:
        rounds = [hop_round(args, r + 1, bias) for r in range(args.rounds)]
        labels = list(rounds[0]["hop"])
        summary = {
            f"proxy_overhead_p50_ms {label}": [r["hop"][label]["overhead_p50_ms"] for r in rounds]
            for label in labels
        }
    else:
        rounds = [one_round(args, r + 1, bias) for r in range(args.rounds)]
        ratios = [r["pool"]["tokens_per_s"] / r["alone"]["tokens_per_s"] for r in rounds]
        summary = {
            "pool_over_alone": [round(x, 3) for x in ratios],
            "proxy_overhead_p50_ms": [r["hop"]["overhead_p50_ms"] for r in rounds],
        }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "when": stamp,
        "machine": machine(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rounds": rounds,
        "summary": summary,
    }
    path = RESULTS / f"pool-{'hop-' if args.hop_only else ''}{stamp}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(summary), f"\nwritten to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
