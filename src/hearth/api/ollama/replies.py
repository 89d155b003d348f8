"""The engine's events → Ollama's replies, shared by /api/chat and /api/generate.

Streamed: one NDJSON object per piece of text, then a last one with `done: true`, the
reason and the counters (durations in nanoseconds, timed here at the surface). Not
streamed: that last object carrying the whole text. An engine failure after the first
line is a final `{"error": ...}` line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from hearth.api.ollama import convert
from hearth.api.ollama.convert import now_iso
from hearth.api.ollama.schemas import ChatRequest, GenerateRequest
from hearth.api.state import AppState
from hearth.api.streaming import (
    EventStream,
    ndjson_line,
    ollama_ndjson_ending,
    unless_disconnected,
)
from hearth.engine.registry import DEFAULT, KeepAlive
from hearth.engine.types import (
    ChatMessage,
    Finished,
    GenerationRequest,
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from hearth.services.failures import engine_failure
from hearth.services.generation import ChoiceResult, Clock, ModelReply, start_reply
from hearth.services.logprobs import logprob_entries
from hearth.services.profiles import with_profile

NDJSON = "application/x-ndjson"


def durations(clock: Clock, usage: Usage) -> dict[str, int]:
    """Ollama's counts and durations (nanoseconds) of a request that ends now."""
    end = time.perf_counter_ns()
    loaded = clock.loaded_ns if clock.loaded_ns is not None else clock.started_ns
    admitted = clock.admitted_ns if clock.admitted_ns is not None else loaded
    first = clock.first_output_ns if clock.first_output_ns is not None else end
    return {
        "total_duration": end - clock.started_ns,
        "load_duration": loaded - clock.started_ns,
        "prompt_eval_count": usage.prompt_tokens,
        "prompt_eval_duration": first - admitted,
        "eval_count": usage.completion_tokens,
        "eval_duration": end - first,
    }


@dataclass(frozen=True)
class Shape:
    """Where the text goes: `message.content` for chat, `response` for generate."""

    model: str
    chat: bool

    def piece(
        self,
        text: str,
        logprobs: list[dict[str, Any]] | None = None,
        tool_calls: list[ToolCall] | None = None,
        thinking: str = "",
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "created_at": now_iso()}
        if self.chat:
            out["message"] = {"role": "assistant", "content": text}
            shown = convert.tool_calls(tool_calls or [])
            if shown:
                out["message"]["tool_calls"] = shown
            if thinking:
                out["message"]["thinking"] = thinking
        else:
            out["response"] = text
            if thinking:
                out["thinking"] = thinking
        if logprobs is not None:
            out["logprobs"] = logprobs
        out["done"] = False
        return out

    def final(self, text: str, reason: str, thinking: str = "", **extra: Any) -> dict[str, Any]:
        piece = self.piece(text, thinking=thinking)
        return {**piece, "done": True, "done_reason": reason, **extra}

    def loaded(self, unloading: bool = False) -> dict[str, Any]:
        """The reply to a request without a prompt: Ollama loads the model and says so,
        or with keep_alive 0 says it is unloading it."""
        return self.final("", "unload" if unloading else "load")


async def answer(
    request: Request,
    state: AppState,
    body: ChatRequest | GenerateRequest,
    *,
    chat: bool,
    messages: tuple[ChatMessage, ...] | None,
    prompt: str | None = None,
) -> dict[str, Any] | EventStream:
    """/api/chat and /api/generate after their own parsing: load, then answer or just load."""
    clock = Clock()
    name = convert.resolve_model(state, body.model)
    convert.refuse_unsupported(body)
    keep = body.keep_alive_for
    # Held from the load until the reply holds its own: under --max-loaded-models another
    # model's load must not take its place in between (and have it loaded twice).
    backend, release = await unless_disconnected(request, state.registry.acquire(name, keep))
    try:
        clock.loaded_ns = time.perf_counter_ns()
        shape = Shape(model=body.model, chat=chat)
        control = convert.thinking(body)
        if not messages and not prompt:
            return shape.loaded(unloading=keep == 0)
        gen = GenerationRequest(
            think=control.think,
            reasoning_effort=control.effort,
            model=name,
            messages=messages,
            prompt=prompt,
            sampling=convert.sampling(body.options, backend.info.context_length),
            stop=convert.stops(body.options),
            max_tokens=convert.max_tokens(body.options),
            logprobs=convert.logprobs(body),
            grammar=convert.format_grammar(body),
            tools=convert.tools(body),
        )
        gen = with_profile(gen, state.registry.profile(name), convert.explicit(body.options))
        return await respond(
            request, state, gen, shape, stream=body.streaming, clock=clock, keep_alive=keep
        )
    finally:
        await release()


async def respond(
    request: Request,
    state: AppState,
    gen: GenerationRequest,
    shape: Shape,
    *,
    stream: bool,
    clock: Clock,
    keep_alive: KeepAlive = DEFAULT,
) -> dict[str, Any] | EventStream:
    started = start_reply(state.registry, [gen], keep_alive, clock)
    run = await unless_disconnected(request, started)
    want_logprobs = gen.logprobs is not None
    if stream:
        lines = _lines(run, shape, want_logprobs)
        return EventStream(
            lines, media_type=NDJSON, on_close=run.aclose, ending=ollama_ndjson_ending
        )
    try:
        return await unless_disconnected(request, _whole(run, shape, want_logprobs))
    finally:
        await run.aclose()


async def _lines(run: ModelReply, shape: Shape, want_logprobs: bool) -> AsyncGenerator[bytes, None]:
    calls = ChoiceResult(index=0)
    async with aclosing(run.events()) as events:
        async for _, event in events:
            if isinstance(event, Finished):
                if event.reason == "error":
                    yield ollama_ndjson_ending(engine_failure(event))
                    return
                if calls.tool_calls:  # Ollama sends whole calls, not pieces
                    yield ndjson_line(shape.piece("", tool_calls=calls.tool_calls))
                yield ndjson_line(
                    shape.final("", _reason(event.reason), **durations(run.clock, event.usage))
                )
                return
            if isinstance(event, ToolCallDelta):
                calls.add(event)
                continue
            if isinstance(event, ReasoningDelta):
                yield ndjson_line(shape.piece("", thinking=event.text))
                continue
            logprobs = logprob_entries(event.logprobs) if want_logprobs else None
            yield ndjson_line(shape.piece(event.text, logprobs))


async def _whole(run: ModelReply, shape: Shape, want_logprobs: bool) -> dict[str, Any]:
    results = await run.collect()
    result = results[0]
    assert result.usage is not None and result.finish_reason is not None
    extra = durations(run.clock, result.usage)
    if want_logprobs:
        extra["logprobs"] = logprob_entries(result.logprobs)
    final = shape.final(
        result.text, _reason(result.finish_reason), thinking=result.reasoning, **extra
    )
    shown = convert.tool_calls(result.tool_calls)
    if shown:
        final["message"]["tool_calls"] = shown
    return final


def _reason(reason: str) -> str:
    return "stop" if reason == "tool_calls" else reason  # Ollama says "stop" after calls
