"""Soak: many keys, every surface, for a while; what leaks or drifts shows at the end.

`hearth serve` with the bundled model and a fresh data dir; keys made with `hearth keys
create`. For --minutes, --clients clients (16) send back to back, each with its own key
and a surface in turn (OpenAI chat streamed and not, Ollama chat, Responses streamed, the
WebSocket): most on keys without limits; a tenth on a key of their own that leave each
stream after a few chunks (the client disconnects); and one on a key with small limits,
so it is refused throughout. Reported:

- errors: anything but a completed reply, a 429 for the limited key, or the cut of a
  client that left on purpose (target 0);
- RSS growth from the end of the warm-up to the end (target < 5%), not counting the host
  memory of the KV cache of idle conversations (`--cache-ram`, by design up to its
  budget; `hearth_host_cache_bytes`), which is reported beside it;
- that no sequence is running or waiting once the clients stop;
- recorded usage (`/admin/usage`) against what the clients were told: for every key
  whose clients finish their replies, prompt and completion tokens must be equal.

Only 127.0.0.1 is contacted; every loop ends at the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from run import RESULTS, Server, free_port

MODEL = "smollm2-135m-instruct"
ADMIN_KEY = "sk-soak-admin"
SURFACES = ("openai-stream", "openai", "ollama", "responses", "ws")
PROMPTS = (
    "Name three colours.",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Count from one to five.",
)
# A response that stops at max_output_tokens is "incomplete": still a whole reply.
TERMINAL_OK = {"response.completed", "response.incomplete"}
KEEP_CHUNKS = 3  # a leaving client reads this many chunks, then disconnects


@dataclass
class Tally:
    prompt: int = 0
    completion: int = 0
    done: int = 0
    left: int = 0  # disconnected on purpose
    limited: int = 0  # 429s
    errors: Counter[str] = field(default_factory=Counter)


def make_key(data_dir: Path, name: str, *flags: str) -> str:
    env = {**os.environ, "HEARTH_DATA_DIR": str(data_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "hearth", "keys", "create", "--name", name, *flags],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


class Client:
    def __init__(self, url: str, key: str, tally: Tally, leaves: bool) -> None:
        self.url, self.key, self.tally, self.leaves = url, key, tally, leaves
        self.headers = {"Authorization": f"Bearer {key}"}

    async def one(self, http: httpx.AsyncClient, surface: str, prompt: str) -> None:
        messages = [{"role": "user", "content": prompt}]
        if surface == "ws":
            await self._ws(messages)
            return
        body: dict[str, object]
        if surface.startswith("openai"):
            path = "/v1/chat/completions"
            stream = surface == "openai-stream"
            body = {"model": MODEL, "messages": messages, "max_tokens": 48, "stream": stream}
            if stream:
                body["stream_options"] = {"include_usage": True}
        elif surface == "ollama":
            path, stream = "/api/chat", True
            body = {"model": MODEL, "messages": messages, "options": {"num_predict": 48}}
        else:
            path, stream = "/v1/responses", True
            body = {"model": MODEL, "input": prompt, "max_output_tokens": 48, "stream": True}
        async with http.stream("POST", self.url + path, json=body, headers=self.headers) as r:
            if r.status_code == 429:
                self.tally.limited += 1
                await asyncio.sleep(0.2)  # over its limits throughout, but not a busy loop
                return
            if r.status_code != 200:
                self.tally.errors[f"{surface} {r.status_code}"] += 1
                return
            if not stream:
                usage = json.loads(await r.aread())["usage"]
                self._count(usage["prompt_tokens"], usage["completion_tokens"])
                return
            seen = 0
            async for line in r.aiter_lines():
                if not line.strip():
                    continue
                seen += 1
                if self.leaves and seen >= KEEP_CHUNKS:
                    self.tally.left += 1
                    return  # the with-block closes the connection mid-stream
                self._line(surface, line)

    def _line(self, surface: str, line: str) -> None:
        if surface == "ollama":
            data = json.loads(line)
            if "error" in data:
                self.tally.errors[f"ollama {data['error'][:60]}"] += 1
            elif data.get("done"):
                self._count(data["prompt_eval_count"], data["eval_count"])
            return
        if not line.startswith("data: ") or line == "data: [DONE]":
            return
        data = json.loads(line.removeprefix("data: "))
        if "error" in data and surface != "responses":
            self.tally.errors[f"{surface} {data['error'].get('code')}"] += 1
        elif surface == "openai-stream" and data.get("usage"):
            self._count(data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"])
        elif surface == "responses" and data.get("type") in TERMINAL_OK:
            usage = data["response"]["usage"]
            self._count(usage["input_tokens"], usage["output_tokens"])
        elif surface == "responses" and data.get("type") in {"response.failed", "error"}:
            self.tally.errors[f"responses {data['type']}"] += 1

    async def _ws(self, messages: list[dict[str, str]]) -> None:
        url = self.url.replace("http://", "ws://") + "/v1/ws"
        async with connect(url, additional_headers=self.headers, open_timeout=30) as ws:
            frame = {"type": "chat", "id": "1", "model": MODEL, "messages": messages}
            await ws.send(json.dumps({**frame, "max_tokens": 48}))
            seen = 0
            while True:
                data = json.loads(await asyncio.wait_for(ws.recv(), 120))
                seen += 1
                if self.leaves and seen >= KEEP_CHUNKS:
                    self.tally.left += 1
                    return  # the socket closes with the reply running
                if data.get("type") == "done":
                    usage = data["usage"]
                    self._count(usage["prompt_tokens"], usage["completion_tokens"])
                    return
                if data.get("type") == "error":
                    if data.get("code") in {"rate_limit_exceeded", "insufficient_quota"}:
                        self.tally.limited += 1
                    else:
                        self.tally.errors[f"ws {data.get('code')}"] += 1
                    return

    def _count(self, prompt: int, completion: int) -> None:
        self.tally.prompt += prompt
        self.tally.completion += completion
        self.tally.done += 1

    async def run(self, deadline: float, offset: int) -> None:
        turn = offset
        async with httpx.AsyncClient(timeout=180) as http:
            while time.monotonic() < deadline:
                surface = SURFACES[turn % len(SURFACES)]
                prompt = PROMPTS[turn % len(PROMPTS)]
                turn += 1
                try:
                    await self.one(http, surface, prompt)
                except Exception as exc:  # counted, and the client goes on
                    self.tally.errors[f"{surface} {type(exc).__name__}"] += 1


def host_cache_mb(url: str) -> float:
    """What the host cache of parked sequences holds now (from /metrics)."""
    reply = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    )
    total = 0.0
    for line in reply.text.splitlines():
        if line.startswith("hearth_host_cache_bytes"):
            total += float(line.rsplit(" ", 1)[1])
    return total / 2**20


def running_now(url: str) -> int:
    models = httpx.get(f"{url}/health", timeout=10).json()["models"]
    return sum(int(m["running"]) + int(m["waiting"]) for m in models)


def recorded(url: str) -> dict[str, dict[str, int]]:
    """Prompt and completion tokens and requests recorded per key name."""
    reply = httpx.get(
        f"{url}/admin/usage", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    )
    reply.raise_for_status()
    totals: dict[str, dict[str, int]] = {}
    for row in reply.json()["data"]:
        into = totals.setdefault(row["key"], Counter())  # type: ignore[arg-type]
        for name in ("requests", "prompt_tokens", "completion_tokens"):
            into[name] += row[name]
    return totals


async def soak(args: argparse.Namespace, url: str, keys: dict[str, str]) -> dict[str, Tally]:
    tallies = {name: Tally() for name in keys}
    clients = []
    for i in range(args.clients):
        if i == 0:
            name = "soak-limited"
        elif i <= max(1, args.clients // 10):
            name = "soak-leaving"
        else:
            name = f"soak-{'ab'[i % 2]}"
        clients.append(Client(url, keys[name], tallies[name], leaves=name == "soak-leaving"))
    deadline = time.monotonic() + args.minutes * 60
    await asyncio.gather(*(c.run(deadline, i) for i, c in enumerate(clients)))
    return tallies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS counts")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--cache-ram", type=int, help="MiB for the host cache (the default)")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="hearth-soak-"))
    keys = {
        "soak-a": make_key(data_dir, "soak-a"),
        "soak-b": make_key(data_dir, "soak-b"),
        "soak-leaving": make_key(data_dir, "soak-leaving"),
        "soak-limited": make_key(data_dir, "soak-limited", "--rpm", "2", "--tpm", "300"),
    }
    port = free_port()
    argv = [
        sys.executable, "-m", "hearth", "serve", "--port", str(port), "--api-key", ADMIN_KEY,
        "--parallel", str(args.parallel), "--log-level", "warning",
    ]  # fmt: skip
    if args.cache_ram is not None:
        argv += ["--cache-ram", str(args.cache_ram)]
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    os.environ["HEARTH_DATA_DIR"] = str(data_dir)  # the server's, like the keys'
    server = Server(argv, port, RESULTS / f"soak-{stamp}.log")
    try:
        server.wait_ready(path="/health")
        rss: list[tuple[float, float, float]] = []  # (seconds, RSS MiB, host cache MiB)
        started = time.monotonic()

        def one_sample() -> None:
            cached = host_cache_mb(server.url)
            rss.append((time.monotonic() - started, server.rss_mb(), cached))

        async def sample() -> None:
            while True:
                await asyncio.to_thread(one_sample)
                await asyncio.sleep(5)

        async def everything() -> dict[str, Tally]:
            sampler = asyncio.create_task(sample())
            try:
                return await soak(args, server.url, keys)
            finally:
                sampler.cancel()

        tallies = asyncio.run(everything())
        settle = time.monotonic() + 30
        while running_now(server.url) and time.monotonic() < settle:
            time.sleep(0.5)
        busy_at_end = running_now(server.url)
        time.sleep(3)  # usage is written in batches about once a second
        usage = recorded(server.url)
        one_sample()
    finally:
        server.stop()

    kept = [(mb, cached) for t, mb, cached in rss if t >= args.warmup] or [rss[-1][1:]]
    first, last = kept[0][0] - kept[0][1], kept[-1][0] - kept[-1][1]
    growth = (last - first) / first * 100
    errors = Counter[str]()
    for tally in tallies.values():
        errors.update(tally.errors)
    checked = {}
    for name, tally in tallies.items():
        got = usage.get(name, Counter())
        if name == "soak-leaving":
            continue  # its clients never see the usage of the replies they left
        checked[name] = {
            "client_prompt": tally.prompt,
            "recorded_prompt": got.get("prompt_tokens", 0),
            "client_completion": tally.completion,
            "recorded_completion": got.get("completion_tokens", 0),
            "equal": tally.prompt == got.get("prompt_tokens", 0)
            and tally.completion == got.get("completion_tokens", 0),
        }
    result = {
        "when": stamp,
        "minutes": args.minutes,
        "clients": args.clients,
        "parallel": args.parallel,
        "replies": {n: t.done for n, t in tallies.items()},
        "left_on_purpose": tallies["soak-leaving"].left,
        "limited_429": tallies["soak-limited"].limited,
        "errors": dict(errors),
        "rss_mb_after_warmup": round(kept[0][0], 1),
        "rss_mb_end": round(kept[-1][0], 1),
        "host_cache_mb_after_warmup": round(kept[0][1], 1),
        "host_cache_mb_end": round(kept[-1][1], 1),
        "rss_less_host_cache_mb_after_warmup": round(first, 1),
        "rss_less_host_cache_mb_end": round(last, 1),
        "rss_growth_pct": round(growth, 2),
        "rss_mb_median": round(statistics.median(mb for _, mb, _ in rss), 1),
        "sequences_busy_at_end": busy_at_end,
        "usage": checked,
    }
    out = RESULTS / f"soak-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = (
        not errors
        and growth < 5
        and busy_at_end == 0
        and all(c["equal"] for c in checked.values())
        and result["limited_429"] > 0
    )
    print(f"soak {'passed' if ok else 'FAILED'}; {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
