"""Decode speed late in a long reply with tools offered, against the same reply without.

A lazy tool-call grammar watches the reply for `<tool_call>` at every token. If that watch
looks at the whole reply so far, each token costs more than the last, and one long answer
holds the scheduler thread (and every other request on the model) for ever longer steps.
This measures tokens 400 to 1000 of one streamed greedy reply (end tokens and the call's
opening token banned, so both replies run to 1000 tokens) with a tool offered
(tool_choice auto) and without, in interleaved rounds on one server. Target: ≥ 0.9×.

Only 127.0.0.1 is contacted; every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from hearth.core.config import bundled_model_path
from run import RESULTS, Server, commands, end_token_bias, free_port

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
PROMPT = "Write a very long story about a lighthouse keeper and the ships she saw."
FIRST, LAST = 400, 1000


def call_open_bias(model: Path) -> dict[str, int]:
    """Bans the first token of `<tool_call>`, so the tools run never opens a call."""
    from hearth.engine.llama_cpp.model import LlamaModel

    m = LlamaModel(model)
    try:
        first = m.tokenize("<tool_call>", add_special=False, parse_special=True)[0]
        return {str(first): -100}
    finally:
        m.close()


def token_times(url: str, tools: bool, bias: dict[str, int]) -> list[float]:
    """When each token of one streamed reply arrived (one logprobs entry per token)."""
    body: dict[str, object] = {
        "model": "bench",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": LAST,
        "temperature": 0,
        "stream": True,
        "logprobs": True,
        "logit_bias": bias,
    }
    if tools:
        body["tools"] = TOOLS
    times: list[float] = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk["choices"]:
                if choice["delta"].get("tool_calls"):
                    raise SystemExit("the model opened a tool call: the runs are not alike")
                entries = (choice.get("logprobs") or {}).get("content") or []
                now = time.perf_counter()
                times.extend(now for _ in entries)
    return times


def late_rate(times: list[float]) -> float:
    if len(times) < LAST:
        raise SystemExit(f"the reply stopped after {len(times)} tokens, before {LAST}")
    return (LAST - FIRST) / (times[LAST - 1] - times[FIRST - 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = bundled_model_path()
    bias = {**end_token_bias(model), **call_open_bias(model)}
    port = free_port()
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    server = Server(
        commands("hearth", model, port, args.threads, 1, 4096), port, RESULTS / "tools.log"
    )
    rates: dict[str, list[float]] = {"plain": [], "tools": []}
    try:
        server.wait_ready()
        for round_no in range(1, args.rounds + 1):
            for name in ("plain", "tools"):
                rate = late_rate(token_times(server.url, name == "tools", bias))
                rates[name].append(rate)
                print(f"round {round_no} {name}: tokens {FIRST}-{LAST} at {rate:.1f} tok/s")
    finally:
        server.stop()
    ratio = statistics.median(rates["tools"]) / statistics.median(rates["plain"])
    print(f"tools ÷ plain, median of {args.rounds} rounds: {ratio:.2f}× (target ≥ 0.9×)")
    out = RESULTS / f"tools-decode-{stamp}.json"
    out.write_text(json.dumps({"rates": rates, "ratio": ratio, "threads": args.threads}))
    print(f"results: {out}")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
