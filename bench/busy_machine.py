"""One stream's speed when Hearth shares the cores, under each OpenMP wait policy.

llama.cpp's CPU backend runs each graph on an OpenMP team. By default libgomp's threads
spin for a while at every barrier instead of sleeping: free on an idle machine, but when
another process wants the same cores, a spinning thread burns the time slice its partner
needs, and a step of milliseconds can take far longer. This starts Hearth under each
setting below (libgomp's default, OMP_WAIT_POLICY=passive, shorter spins) and streams
greedy replies of 128 tokens one at a time, on an idle machine and beside one
busy-looping process per core, in interleaved rounds. Reported: tokens/s and TTFT of
each, and each setting ÷ the default.

Only 127.0.0.1 is contacted; every loop is bounded (the busy loops end with the script).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from datetime import UTC, datetime

import httpx

from hearth.core.config import bundled_model_path
from run import (
    PROMPTS,
    RESULTS,
    Server,
    commands,
    end_token_bias,
    free_port,
    stream_with_retry,
)

# Each setting: the environment Hearth starts with (libgomp reads it when it loads).
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},  # libgomp's own: 300,000 spins
    "passive": {"OMP_WAIT_POLICY": "passive"},
    "spin-10k": {"GOMP_SPINCOUNT": "10000"},
    "spin-30k": {"GOMP_SPINCOUNT": "30000"},
    "spin-100k": {"GOMP_SPINCOUNT": "100000"},
}


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def one_stream(url: str, requests: int, bias: dict[str, int]) -> tuple[float, float]:
    """(tokens/s, median TTFT in ms) of `requests` streamed replies sent one at a time."""
    tokens = 0
    ttfts = []
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as http:
        for i in range(requests):
            messages = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
            ttft, _, n, _ = await stream_with_retry(http, url, messages, 128, bias)
            tokens += n
            ttfts.append(ttft)
    return tokens / (time.perf_counter() - start), statistics.median(ttfts) * 1000


def measure(setting: str, busy: bool, args: argparse.Namespace, bias: dict[str, int]) -> dict:  # type: ignore[type-arg]
    model = bundled_model_path()
    port = free_port()
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        os.environ.pop(name, None)
    os.environ.update(SETTINGS[setting])
    argv = commands("hearth", model, port, args.threads, 1, 4096)
    server = Server(argv, port, RESULTS / f"busy-{setting}.log")
    hogs: list[multiprocessing.Process] = []
    try:
        server.wait_ready()
        asyncio.run(one_stream(server.url, 1, bias))  # warm up
        if busy:
            hogs = [
                multiprocessing.Process(target=spin, args=(args.hog_seconds,))
                for _ in range(os.cpu_count() or 2)
            ]
            for hog in hogs:
                hog.start()
        rate, ttft = asyncio.run(one_stream(server.url, args.requests, bias))
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()
        server.stop()
    return {"setting": setting, "busy": busy, "tokens_per_s": rate, "ttft_p50_ms": ttft}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hog-seconds", type=float, default=300)
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--loads", nargs="+", choices=["idle", "busy"], default=["idle", "busy"])
    args = parser.parse_args()
    if "default" not in args.settings:
        parser.error("the settings compared must include 'default'")
    bias = end_token_bias(bundled_model_path())
    RESULTS.mkdir(exist_ok=True)
    runs = []
    names = args.settings
    loads = [load == "busy" for load in args.loads]
    for round_no in range(1, args.rounds + 1):
        for busy in loads:
            for setting in names if round_no % 2 else names[::-1]:
                run = measure(setting, busy, args, bias)
                runs.append(run)
                print(
                    f"round {round_no} {'busy' if busy else 'idle'} {setting}: "
                    f"{run['tokens_per_s']:.1f} tok/s, TTFT p50 {run['ttft_p50_ms']:.0f} ms",
                    flush=True,
                )
    ratios: dict[str, dict[str, float]] = {}
    for busy in loads:
        rates = {
            name: statistics.median(
                r["tokens_per_s"] for r in runs if r["setting"] == name and r["busy"] == busy
            )
            for name in names
        }
        ratios["busy" if busy else "idle"] = {n: rates[n] / rates["default"] for n in names}
    for where, by_name in ratios.items():
        shown = ", ".join(f"{n} {r:.3f}×" for n, r in by_name.items() if n != "default")
        print(f"{where}: tok/s ÷ default, median of {args.rounds} rounds: {shown}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"busy-machine-{stamp}.json"
    out.write_text(json.dumps({"runs": runs, "ratios": ratios}, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
