"""A pool of engines behind one Hearth (issue #18), measured side by side in one run:

- throughput: the same streaming load (c clients, greedy, end tokens banned) sent to one
  Hearth member alone, then through a front Hearth whose model is an `upstream` pool of
  two Hearth members (the first and a second one like it); ratio pool ÷ alone;
- the proxy hop: time to first token of one request at a time, through the front and
  directly at a member, alternated; the overhead is the median of the differences;
- with --llama-server, the same load through a front whose pool is one llama-server, and
  directly at it (a foreign engine behind the pool).

Every member gets --threads; on a machine with fewer cores than the members need, two
members share the cores one had, so the pool cannot be faster there (the README says so).

    python bench/pool.py [--rounds 2] [--concurrency 16] [--llama-server]

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


def start(name: str, args: argparse.Namespace, label: str, stack: ExitStack) -> Server:
    port = free_port()
    argv = commands(name, args.model, port, args.threads, args.parallel, args.ctx_size)
    server = Server(argv, port, RESULTS / f"pool-{label}.log")
    stack.callback(server.stop)
    server.wait_ready()
    return server


def front(urls: list[str], args: argparse.Namespace, label: str, stack: ExitStack) -> Server:
    """A Hearth whose one model is a pool of `urls`; it decodes nothing itself."""
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
    server = Server(argv, port, RESULTS / f"pool-{label}.log")
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


async def hop(direct: str, through: str, n: int, bias: dict[str, int]) -> dict[str, float]:
    """TTFT one request at a time, alternating a member and the front."""
    differences: list[float] = []
    firsts: dict[str, list[float]] = {"direct": [], "front": []}
    async with httpx.AsyncClient(timeout=120) as http:
        for i in range(n):
            # Each request its own text of the same length: neither side finds the other's
            # prompt in a prefix cache (the template's start both reuse alike).
            for where, url in (("direct", direct), ("front", through)):
                messages = [{"role": "user", "content": f"Say a number: {where[0]}{i:03d}"}]
                first, _, _ = await stream_chat(http, url, messages, 2, bias)
                firsts[where].append(first)
            differences.append(firsts["front"][-1] - firsts["direct"][-1])
    return {
        "direct_ttft_p50_ms": round(statistics.median(firsts["direct"]) * 1000, 2),
        "front_ttft_p50_ms": round(statistics.median(firsts["front"]) * 1000, 2),
        "overhead_p50_ms": round(statistics.median(differences) * 1000, 2),
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
        out["hop"] = asyncio.run(hop(first.url, pool.url, args.hop_requests, bias))
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
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    bias = end_token_bias(args.model)
    rounds = [one_round(args, r + 1, bias) for r in range(args.rounds)]
    ratios = [r["pool"]["tokens_per_s"] / r["alone"]["tokens_per_s"] for r in rounds]
    overheads = [r["hop"]["overhead_p50_ms"] for r in rounds]
    summary = {
        "pool_over_alone": [round(x, 3) for x in ratios],
        "proxy_overhead_p50_ms": overheads,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "when": stamp,
        "machine": machine(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rounds": rounds,
        "summary": summary,
    }
    path = RESULTS / f"pool-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(summary), f"\nwritten to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
