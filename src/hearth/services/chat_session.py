"""The requests of one long-lived chat connection, in flight at once and keyed by the
client's own ids. Transport-free: the WebSocket surface feeds it requests and turns what
it reports to its `Listener` into frames.

Each request runs as one task through `start_reply`, the same path as every surface, so
sampling, stopping, usage and slot handling come from the engine. Cancelling a request
(or closing the session) cancels its task, which closes the run and frees the slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from hearth.core.errors import Conflict, HearthError, NotFound
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import (
    Finished,
    FinishReason,
    GenerationRequest,
    ReasoningDelta,
    TokenEvent,
    Usage,
)
from hearth.services.failures import engine_failure
from hearth.services.generation import start_reply

log = logging.getLogger(__name__)

UNEXPECTED = "The server had an error while processing your request."


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds, measured on the server. `first_token_s`: from the request to its first
    token (queueing and prompt included); `generation_s`: from the first token to the end."""

    first_token_s: float | None
    generation_s: float

    def tokens_per_second(self, completion_tokens: int) -> float | None:
        # The first token's time belongs to the prompt; the rate counts the ones after it.
        if completion_tokens < 2 or self.generation_s <= 0:
            return None
        return (completion_tokens - 1) / self.generation_s


@dataclass(frozen=True, slots=True)
class Reply:
    """A request that ended without error: its whole text (what a store would keep), why
    it ended, and the engine's counts (none when it was cancelled: the engine never
    finished counting)."""

    text: str
    finish_reason: FinishReason
    usage: Usage | None = None
    timing: Timing | None = None
    reasoning: str = ""  # a reasoning model's thinking, apart from the text


class Listener(Protocol):
    """What a session reports. Exactly one of `done` / `failed` ends each request."""

    async def delta(self, rid: str, text: str) -> None: ...

    async def reasoning(self, rid: str, text: str) -> None:
        """A piece of a reasoning model's thinking (before its text)."""
        ...

    async def done(self, rid: str, reply: Reply) -> None: ...

    async def failed(self, rid: str, err: HearthError) -> None: ...


@dataclass
class _InFlight:
    task: asyncio.Task[None]
    text: str = ""  # streamed so far
    reasoning: str = ""
    ending: bool = False  # its last report is being sent: too late to cancel


class ChatSession:
    def __init__(self, registry: ModelRegistry, listener: Listener) -> None:
        self._registry = registry
        self._listener = listener
        self._requests: dict[str, _InFlight] = {}

    @property
    def in_flight(self) -> int:
        return len(self._requests)

    def start(self, rid: str, request: GenerationRequest) -> None:
        """Begin a request; its reports go to the listener. A duplicate id is refused."""
        if rid in self._requests:
            raise Conflict(
                f"A request with id '{rid}' is already in flight on this connection.",
                param="id",
                code="duplicate_id",
            )
        task = asyncio.create_task(self._run(rid, request), name=f"chat:{rid}")
        self._requests[rid] = _InFlight(task)

    async def cancel(self, rid: str) -> None:
        """Stop a request and free its slot; the listener hears `done` with reason
        "cancelled" and the text streamed until then."""
        entry = self._requests.get(rid)
        if entry is None:
            raise NotFound(f"No request with id '{rid}' is in flight.", param="id")
        if entry.ending:
            return  # it finished on its own; its `done` is on the way
        entry.task.cancel()
        await asyncio.gather(entry.task, return_exceptions=True)
        # A task cancelled before it ever ran never reaches its own cleanup.
        self._requests.pop(rid, None)
        await self._listener.done(rid, Reply(entry.text, "cancelled"))

    async def close(self) -> dict[str, str]:
        """Cancel everything in flight (the connection is gone: nothing is reported) and
        return the text each cancelled request had streamed, by id. A request already
        sending its last report is left to finish it (it fails fast on a gone socket)."""
        entries = dict(self._requests)
        stopped = {rid: entry.text for rid, entry in entries.items() if not entry.ending}
        for rid in stopped:
            entries[rid].task.cancel()
        await asyncio.gather(*(entry.task for entry in entries.values()), return_exceptions=True)
        self._requests.clear()
        return stopped

    async def _run(self, rid: str, request: GenerationRequest) -> None:
        try:
            await self._generate(rid, request)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The listener could not send (the connection went away); the reader notices
            # and closes the session.
            log.debug("chat request %s ended early", rid, exc_info=True)
        finally:
            self._requests.pop(rid, None)

    def _ending(self, rid: str) -> None:
        entry = self._requests.get(rid)
        if entry is not None:
            entry.ending = True

    async def _fail(self, rid: str, err: HearthError) -> None:
        self._ending(rid)
        await self._listener.failed(rid, err)

    async def _generate(self, rid: str, request: GenerationRequest) -> None:
        # Failures of the engine are reported to the client; failures of the listener
        # (the connection is gone) propagate to _run.
        began = time.perf_counter_ns()
        try:
            run = await start_reply(self._registry, [request])
        except HearthError as err:
            await self._fail(rid, err)
            return
        except Exception:
            log.exception("chat request %s could not start", rid)
            await self._fail(rid, HearthError(UNEXPECTED))
            return
        finished: Finished | None = None
        try:
            async with aclosing(run.events()) as events:
                while True:
                    try:
                        _, event = await anext(events)
                    except StopAsyncIteration:
                        break
                    except Exception:
                        log.exception("chat request %s failed", rid)
                        await self._fail(rid, HearthError(UNEXPECTED))
                        return
                    if isinstance(event, Finished):
                        finished = event
                    elif isinstance(event, ReasoningDelta):
                        self._requests[rid].reasoning += event.text
                        await self._listener.reasoning(rid, event.text)
                    elif isinstance(event, TokenEvent) and event.text:
                        self._requests[rid].text += event.text
                        await self._listener.delta(rid, event.text)
        finally:
            await run.aclose()
        ended = time.perf_counter_ns()
        if finished is None or finished.reason == "error":
            await self._fail(rid, engine_failure(finished))
            return
        self._ending(rid)
        first = run.first_output_ns  # the run's own clock, as every surface reports it
        timing = Timing(
            first_token_s=None if first is None else (first - began) / 1e9,
            generation_s=0.0 if first is None else (ended - first) / 1e9,
        )
        entry = self._requests[rid]
        reply = Reply(entry.text, finished.reason, run.usage, timing, entry.reasoning)
        await self._listener.done(rid, reply)
