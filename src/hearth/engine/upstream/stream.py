"""One admitted request's stream from an upstream member, as a Generation.

The events read before the first output (buffered by the backend while it could still
retry elsewhere) come first; then each SSE chunk as it arrives, each within the token
timeout. Whatever goes wrong after that (a cut stream, a chunk that is not JSON, an error
event, a member that stops sending) ends every unfinished choice with an error Finished,
which each surface renders as its stream's error event. Closing it closes the upstream
response, so the member sees its client leave and frees the slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from hearth.engine.types import Finished, GenerationEvent, Usage
from hearth.engine.upstream.http import TransportError, describe, loads
from hearth.engine.upstream.pool import Member, Pool
from hearth.engine.upstream.wire import ChunkReader, Malformed, UpstreamStreamError

# How long the body's end may take to follow `[DONE]` (it is the same write, or the next).
DRAIN_WITHIN = 0.5
# SSE fields that carry nothing for us; any other non-empty line is not SSE.
OTHER_FIELDS = (b":", b"event:", b"id:", b"retry:")


class StreamEnded(Exception):
    """The SSE stream ended: `[DONE]` (clean) or the connection closing (maybe not)."""

    def __init__(self, done: bool) -> None:
        super().__init__("done" if done else "closed")
        self.done = done


class SseChunks:
    """The JSON chunks of an OpenAI SSE stream, each awaited within a deadline. Lines are
    split here, from whatever the socket gave: one await per read, not per line."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self._content = response.content
        self._lines: deque[bytes] = deque()
        self._rest = b""  # a line not yet ended
        self._eof = False

    async def next(self, within: float) -> Any:
        """The next chunk's JSON; TimeoutError, StreamEnded or Malformed otherwise."""
        if within <= 0:
            raise TimeoutError
        # One deadline over the chunk's lines, in this task: wait_for would start a task
        # for every line, on the path of every token.
        async with asyncio.timeout(within):
            return await self._chunk()

    async def _line(self) -> bytes | None:
        """The next line without its end; None once the body has ended."""
        while not self._lines:
            if self._eof:
                return None
            data = await self._content.readany()
            if not data:
                self._eof = True
                if self._rest:  # the last line, unended
                    self._lines.append(self._rest)
                    self._rest = b""
                continue
            lines = (self._rest + data).split(b"\n")
            self._rest = lines.pop()
            self._lines.extend(lines)
        line = self._lines.popleft()
        return line[:-1] if line.endswith(b"\r") else line

    async def _chunk(self) -> Any:
        data: list[bytes] = []
        while True:
            line = await self._line()
            if line is None:
                raise StreamEnded(done=False)
            if line.startswith(b"data:"):
                data.append(line[5:].strip())
            elif not line and data:
                text = b"\n".join(data)
                if text == b"[DONE]":
                    raise StreamEnded(done=True)
                try:
                    return loads(text)
                except ValueError:
                    shown = text[:80].decode("utf-8", "replace")
                    raise Malformed(f"a chunk that is not JSON: {shown!r}") from None
            elif line and not line.startswith(OTHER_FIELDS):
                shown = line[:80].decode("utf-8", "replace")
                raise Malformed(f"a line that is not server-sent events: {shown!r}")

    async def drain(self, within: float) -> bool:
        """Read what follows `[DONE]` (the body's last, empty chunk): a response read to
        its end leaves its connection to the pool for the next request, where one closed
        early closes it, and every request would then pay a new connection. True when
        the body ended."""
        try:
            async with asyncio.timeout(within):
                while await self._line() is not None:
                    pass
        except (TimeoutError, TransportError):
            return False
        return True


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "stopped sending tokens (timed out)"
    if isinstance(exc, StreamEnded | aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return "closed the stream before it finished"
    if isinstance(exc, Malformed | UpstreamStreamError):
        return str(exc)
    return describe(exc)


class UpstreamGeneration:
    """A plain async iterator, like LlamaGeneration: breaking out of a loop over it does
    not cancel it; `aclose()`, or cancelling the task that awaits it, does."""

    def __init__(
        self,
        pool: Pool,
        member: Member,
        chunks: SseChunks,
        reader: ChunkReader,
        buffered: list[GenerationEvent],
        prompt_tokens: int,
        token_timeout: float,
    ) -> None:
        self._pool = pool
        self._member = member
        self._chunks = chunks
        self._reader = reader
        self._pending = list(buffered)
        self._token_timeout = token_timeout
        self._open = True
        self._ended = False
        self._whole = False  # the body was read to its end: its connection can be reused
        # An estimate until the upstream's usage comes with the stream's last chunk.
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = 0

    def __aiter__(self) -> AsyncIterator[GenerationEvent]:
        return self

    async def __anext__(self) -> GenerationEvent:
        try:
            while not self._pending:
                if self._ended:
                    raise StopAsyncIteration
                await self._read()
        except (StopAsyncIteration, GeneratorExit):
            raise
        except BaseException:
            await self.aclose()
            raise
        return self._pending.pop(0)

    async def _read(self) -> None:
        try:
            chunk = await self._chunks.next(self._token_timeout)
            self._pending.extend(self._reader.read(chunk))
        except StreamEnded as end:
            unfinished = [i for i in range(self._reader.n) if self._reader.state(i).reason is None]
            if end.done and not unfinished:
                self._whole = await self._chunks.drain(DRAIN_WITHIN)
                await self._finish(None)
            else:
                await self._finish(end)
        except (TimeoutError, Malformed, UpstreamStreamError, TransportError) as exc:
            await self._finish(exc)

    async def _finish(self, failure: BaseException | None) -> None:
        """Every choice's Finished, with the usage the upstream reported (or a count)."""
        reader = self._reader
        reason = None
        if failure is not None:
            reason = f"upstream member {self._member.url}: {_failure(failure)}"
            self._pool.failed(self._member, reason, down=isinstance(failure, TimeoutError))
        if reader.usage is not None:
            self.prompt_tokens, total = reader.usage
        else:
            total = sum(reader.state(i).chunks for i in range(reader.n))
        counts = [reader.state(i).chunks for i in range(reader.n)]
        counts[-1] += max(0, total - sum(counts))  # the exact total; per choice as streamed
        for i in range(reader.n):
            state = reader.state(i)
            usage = Usage(self.prompt_tokens, counts[i])
            if failure is None or state.reason not in (None, "error"):
                self._pending.append(Finished(state.reason or "stop", usage, i, stop=state.stop))
            else:
                self._pending.append(Finished("error", usage, i, error=reason))
        self._ended = True
        await self._release()

    async def _release(self) -> None:
        if self._open:
            self._open = False
            self._member.in_flight -= 1
            response = self._chunks.response
            # Reused when read to its end; otherwise closed, so the member sees its
            # client leave and frees the slot.
            if self._whole:
                response.release()
            else:
                response.close()

    async def aclose(self) -> None:
        self._ended = True
        self._pending.clear()
        await self._release()
