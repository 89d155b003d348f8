"""The Messages stream: Anthropic's named SSE events, in Anthropic's order.

message_start, a ping, then per content block content_block_start → deltas →
content_block_stop (text as text_delta, each tool call as its own tool_use block whose
arguments arrive as input_json_delta), then message_delta (stop reason, final usage) and
message_stop. A ping goes out whenever the model has been silent for PING_SECONDS (a long
prompt being read), so proxies and clients do not take the wait for a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from hearth.api.anthropic.convert import stop_reason, thinking_block, usage
from hearth.api.streaming import anthropic_sse_ending, sse_event
from hearth.engine.types import Finished, GenerationEvent, ReasoningDelta, ToolCallDelta, Usage
from hearth.services.failures import engine_failure
from hearth.services.generation import ModelReply

PING_SECONDS = 15.0
_PING = sse_event("ping", {"type": "ping"})


def _event(payload: dict[str, Any]) -> bytes:
    return sse_event(payload["type"], payload)


async def _with_pings(
    events: AsyncIterator[tuple[int, GenerationEvent]], every: float
) -> AsyncIterator[tuple[int, GenerationEvent] | None]:
    """The reply's events, with None for each `every` seconds without one. The pending
    read is waited on, never cancelled: cancelling it would cancel the generation."""
    pending: asyncio.Future[tuple[int, GenerationEvent]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


async def message_stream(run: ModelReply, message_id: str, model: str) -> AsyncIterator[bytes]:
    start_usage = usage(Usage(run.prompt_tokens, 0))
    yield _event(
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        }
    )
    yield _PING
    index = -1  # the open block's position in the message's content
    open_kind: str | None = None  # "thinking", "text" or "tool_use"
    calls: dict[int, int] = {}  # the reply's call number → its block index

    def start(kind: str, block: dict[str, Any]) -> list[bytes]:
        nonlocal index, open_kind
        out = [_event({"type": "content_block_stop", "index": index})] if open_kind else []
        index += 1
        open_kind = kind
        return [
            *out,
            _event({"type": "content_block_start", "index": index, "content_block": block}),
        ]

    def delta(block_index: int, body: dict[str, Any]) -> bytes:
        return _event({"type": "content_block_delta", "index": block_index, "delta": body})

    finished: Finished | None = None
    async for item in _with_pings(run.events(), PING_SECONDS):
        if item is None:
            yield _PING
            continue
        _, event = item
        if isinstance(event, Finished):
            finished = event
            break
        if isinstance(event, ToolCallDelta):
            if event.id is not None:
                block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
                for chunk in start("tool_use", block):
                    yield chunk
                calls[event.call] = index
            if event.arguments:
                body = {"type": "input_json_delta", "partial_json": event.arguments}
                yield delta(calls[event.call], body)
        elif isinstance(event, ReasoningDelta):
            if open_kind != "thinking":
                for chunk in start("thinking", thinking_block("")):
                    yield chunk
            yield delta(index, {"type": "thinking_delta", "thinking": event.text})
        elif event.text:
            if open_kind != "text":
                # a tool_use block is never reopened: text after a call is a new block,
                # and whitespace between calls is not worth one
                if open_kind == "tool_use" and not event.text.strip():
                    continue
                for chunk in start("text", {"type": "text", "text": ""}):
                    yield chunk
            yield delta(index, {"type": "text_delta", "text": event.text})
    if finished is None or finished.reason == "error":
        yield anthropic_sse_ending(engine_failure(finished))
        return
    if open_kind is None:  # an empty reply still has its (empty) text block
        for chunk in start("text", {"type": "text", "text": ""}):
            yield chunk
    yield _event({"type": "content_block_stop", "index": index})
    yield _event(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(finished.reason, finished.stop),
                "stop_sequence": finished.stop,
            },
            "usage": usage(run.usage),
        }
    )
    yield _event({"type": "message_stop"})
