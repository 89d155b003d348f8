"""The engine's events → Ollama's replies, shared by /api/chat and /api/generate.

Streamed: one NDJSON object per piece of text, then a last one with `done: true`, the
reason and the counters (durations in nanoseconds, timed here at the surface). Not
streamed: that last object carrying the whole text. An engine failure after the first
line is a final `{"error": ...}` line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from hearth.api.ollama.convert import now_iso
from hearth.api.state import AppState
from hearth.api.streaming import EventStream, ndjson_line, unless_disconnected
from hearth.core.errors import EngineError
from hearth.engine.types import Finished, GenerationRequest, TokenLogprob, Usage
from hearth.services.generation import Run, start_run

NDJSON = "application/x-ndjson"


@dataclass
class Clock:
    """Checkpoints of one request, in perf_counter nanoseconds."""

    start: int = field(default_factory=time.perf_counter_ns)
    loaded: int = 0
    admitted: int = 0
    first_token: int | None = None
    end: int = 0

    def mark_loaded(self) -> None:
        self.loaded = time.perf_counter_ns()

    def metrics(self, usage: Usage) -> dict[str, int]:
        first = self.first_token if self.first_token is not None else self.end
        return {
            "total_duration": self.end - self.start,
            "load_duration": self.loaded - self.start,
            "prompt_eval_count": usage.prompt_tokens,
            "prompt_eval_duration": first - self.admitted,
            "eval_count": usage.completion_tokens,
            "eval_duration": self.end - first,
        }


@dataclass(frozen=True)
class Shape:
    """Where the text goes: `message.content` for chat, `response` for generate."""

    model: str
    chat: bool

    def piece(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "created_at": now_iso()}
        if self.chat:
            out["message"] = {"role": "assistant", "content": text}
        else:
            out["response"] = text
        if logprobs is not None:
            out["logprobs"] = logprobs
        out["done"] = False
        return out

    def final(self, text: str, reason: str, **extra: Any) -> dict[str, Any]:
        return {**self.piece(text), "done": True, "done_reason": reason, **extra}

    def loaded(self) -> dict[str, Any]:
        """The reply to a request without a prompt: Ollama loads the model and says so."""
        return self.final("", "load")


def ollama_logprobs(entries: tuple[TokenLogprob, ...] | list[TokenLogprob]) -> list[dict[str, Any]]:
    return [
        {
            "token": e.token,
            "logprob": e.logprob,
            "bytes": list(e.bytes),
            "top_logprobs": [
                {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)} for t in e.top
            ],
        }
        for e in entries
    ]


async def respond(
    request: Request,
    state: AppState,
    gen: GenerationRequest,
    shape: Shape,
    *,
    stream: bool,
    clock: Clock,
) -> dict[str, Any] | EventStream:
    run = await unless_disconnected(request, start_run(state.registry, [gen]))
    clock.admitted = time.perf_counter_ns()
    want_logprobs = gen.logprobs is not None
    if stream:
        lines = _Closing(run, _lines(run, shape, clock, want_logprobs))
        return EventStream(lines, media_type=NDJSON)  # type: ignore[arg-type]
    try:
        return await unless_disconnected(request, _whole(run, shape, clock, want_logprobs))
    finally:
        await run.aclose()


class _Closing:
    """The lines of a run, closing the run itself on aclose(): a client gone before the
    first line never starts the generator, whose own cleanup would then never run."""

    def __init__(self, run: Run, lines: AsyncGenerator[bytes, None]) -> None:
        self._run = run
        self._lines = lines

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines

    async def aclose(self) -> None:
        try:
            await self._lines.aclose()
        finally:
            await self._run.aclose()


async def _lines(
    run: Run, shape: Shape, clock: Clock, want_logprobs: bool
) -> AsyncGenerator[bytes, None]:
    async with aclosing(run.events()) as events:
        async for _, event in events:
            if isinstance(event, Finished):
                clock.end = time.perf_counter_ns()
                if event.reason == "error":
                    yield ndjson_line({"error": event.error or "the engine failed"})
                    return
                yield ndjson_line(shape.final("", event.reason, **clock.metrics(event.usage)))
                return
            if clock.first_token is None:
                clock.first_token = time.perf_counter_ns()
            logprobs = ollama_logprobs(event.logprobs) if want_logprobs else None
            yield ndjson_line(shape.piece(event.text, logprobs))


async def _whole(run: Run, shape: Shape, clock: Clock, want_logprobs: bool) -> dict[str, Any]:
    text: list[str] = []
    entries: list[TokenLogprob] = []
    async with aclosing(run.events()) as events:
        async for _, event in events:
            if isinstance(event, Finished):
                clock.end = time.perf_counter_ns()
                if event.reason == "error":
                    raise EngineError(event.error or "the engine failed")
                extra = clock.metrics(event.usage)
                if want_logprobs:
                    extra["logprobs"] = ollama_logprobs(entries)
                return shape.final("".join(text), event.reason, **extra)
            if clock.first_token is None:
                clock.first_token = time.perf_counter_ns()
            text.append(event.text)
            entries.extend(event.logprobs)
    raise EngineError("the generation ended without finishing")
