"""Streaming responses that stop the work the moment the client goes away.

Starlette's StreamingResponse, under ASGI 2.4, notices a disconnect only when a write
fails and then leaves the body iterator suspended. Here the iterator is always closed,
and a disconnect is noticed while waiting too (for a slot, for the next token), so the
engine frees the sequence at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hearth.api.errors import anthropic_error_body, ollama_error_body, openai_error_body
from hearth.core.errors import HearthError
from hearth.services.generation import ChoiceResult, ModelReply

T = TypeVar("T")
# A stream's last bytes when it ends in error: the surface's error event.
Ending = Callable[[HearthError], bytes]
# Where an EventStream leaves itself in its request's scope, for the drain (api/drain.py).
STREAM_KEY = "hearth.stream"

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _json(payload: dict[str, Any]) -> bytes:
    # orjson: one encode per streamed token is the event loop's largest cost after the
    # socket write, and the stdlib encoder is several times slower.
    return orjson.dumps(payload)


def sse_data(payload: dict[str, Any] | str) -> bytes:
    body = payload.encode() if isinstance(payload, str) else _json(payload)
    return b"data: " + body + b"\n\n"


def sse_event(event: str, payload: dict[str, Any] | str) -> bytes:
    body = payload.encode() if isinstance(payload, str) else _json(payload)
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"


def ndjson_line(payload: dict[str, Any]) -> bytes:
    return _json(payload) + b"\n"


def openai_sse_ending(err: HearthError) -> bytes:
    """The OpenAI chat and text completion streams' error event, then their end."""
    return sse_data(openai_error_body(err)) + sse_data("[DONE]")


def anthropic_sse_ending(err: HearthError) -> bytes:
    """Anthropic's stream error: an `error` event, after which the stream just ends."""
    return sse_event("error", anthropic_error_body(err))


def ollama_ndjson_ending(err: HearthError) -> bytes:
    return ndjson_line(ollama_error_body(err))


class EventStream(Response):
    """A streamed body from an async iterator of bytes, cancelled on disconnect.

    `on_close` runs however the response ends, also when the client left before the
    first chunk (an async generator that never started never runs its own cleanup).
    `ending`, when given, lets `stop` end the stream early with that error event (at
    shutdown); a stream without one ends with the work it follows."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        media_type: str = "text/event-stream",
        headers: dict[str, str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        ending: Ending | None = None,
    ) -> None:
        self.chunks = chunks
        self.on_close = on_close
        self.ending = ending
        self._feed = anyio.CancelScope()
        self._stopped_by: HearthError | None = None
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    def stop(self, err: HearthError) -> bool:
        """End the stream after the chunk being sent, with its error event; False (and
        nothing done) for a stream without one."""
        if self.ending is None:
            return False
        self._stopped_by = err
        self._feed.cancel()
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[STREAM_KEY] = self

        async def stream() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            with self._feed:
                async for chunk in self.chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # Only a stop that cut the feed short adds the ending: a feed that ended by
            # itself is already whole.
            if self._feed.cancelled_caught and self.ending and self._stopped_by is not None:
                body = self.ending(self._stopped_by)
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            async with anyio.create_task_group() as tg:

                async def run_then_stop() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await stream()
                    tg.cancel_scope.cancel()

                tg.start_soon(run_then_stop)
                await _wait_disconnect(receive)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self.chunks, "aclose", None)
                try:
                    if aclose is not None:
                        await aclose()
                finally:
                    if self.on_close is not None:
                        await self.on_close()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientGone(Exception):
    """The client disconnected before a non-streamed reply was ready."""


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` (waiting for a slot, a whole non-streamed reply), cancelling it if the
    client disconnects first; the engine then drops the request at its next step.
    The work's own exceptions propagate unchanged."""
    work_task = asyncio.ensure_future(work)
    watch_task = asyncio.create_task(_wait_disconnect(request.receive))
    try:
        await asyncio.wait({work_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch_task.cancel()
        if not work_task.done():
            work_task.cancel()
            await asyncio.gather(work_task, return_exceptions=True)
    if work_task.cancelled():
        raise ClientGone()
    return work_task.result()


async def whole_reply(request: Request, reply: ModelReply) -> list[ChoiceResult]:
    """Every choice of a reply that is not streamed, to its end; the reply is closed
    however that ends (the client leaving cancels it)."""
    try:
        return await unless_disconnected(request, reply.collect())
    finally:
        await reply.aclose()
