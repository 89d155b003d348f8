"""Graceful shutdown: the drain that runs between the stop signal and uvicorn's own
shutdown (cli.py starts it).

While draining, the listening socket stays open and every new request gets a 503 with
Retry-After in its surface's shape (a load balancer or client retries elsewhere or later)
instead of a refused connection. The requests already running get the grace to finish;
then each stream ends with its error event: the completion streams through their
`ending` (api/streaming.py), the streams of background jobs (responses, assistant runs)
through their jobs' ending, saved as today (JobTable.close). A request whose reply has
not started gets the 503 too. Only then does uvicorn close the socket and the lifespan
close the rest.

WebSockets are not held: uvicorn closes them (1012) when it shuts down, and a handshake
during the drain is refused the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.api.errors import error_response
from hearth.api.streaming import STREAM_KEY, EventStream
from hearth.core.errors import HearthError, ShuttingDown

log = logging.getLogger(__name__)

# How long the streams ended after the grace get to send their last event.
AFTER_GRACE = 5.0
WS_SERVICE_RESTART = 1012
FLIGHT_KEY = "hearth.flight"


class Flight:
    """One running HTTP request; the gate leaves it in the scope under FLIGHT_KEY (the
    auth gate hands it to the key watch, services/key_watch.py)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.started = False  # its response has begun
        self.cancel = anyio.CancelScope()
        self.ended_by: HearthError | None = None

    def end(self, err: HearthError) -> None:
        """End it with `err`: a stream with an ending sends it as its last event; a
        reply not begun is answered with `err` by the gate. A stream without an ending
        follows a job, and ends as its job does: the drain stops the jobs, and so does a
        revoke (services/jobs/table.py)."""
        stream = self.scope.get(STREAM_KEY)
        if isinstance(stream, EventStream):
            stream.stop(err)
        elif not self.started:
            self.ended_by = err  # answered with this by the gate
            self.cancel.cancel()

    def revoke(self, err: HearthError) -> None:
        """Its key was revoked: end it now."""
        self.end(err)


class Drain:
    """The running requests, and whether new ones are refused."""

    def __init__(self, stop_jobs: Callable[[], Awaitable[None]]) -> None:
        self.draining = False
        self.retry_after = 1.0
        self._stop_jobs = stop_jobs
        self._flights: set[Flight] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> int:
        return len(self._flights)

    def refusal(self) -> ShuttingDown:
        return ShuttingDown(
            "The server is shutting down and takes no new requests; retry shortly.",
            retry_after=self.retry_after,
        )

    @contextlib.contextmanager
    def track(self, flight: Flight) -> Iterator[None]:
        self._flights.add(flight)
        self._idle.clear()
        try:
            yield
        finally:
            self._flights.discard(flight)
            if not self._flights:
                self._idle.set()

    def cut_short(self) -> None:
        """End the grace now (a second stop signal): what still runs is ended at once."""
        self._idle.set()  # wakes the wait; `run` sees requests still running

    async def _settled(self, within: float) -> bool:
        with anyio.move_on_after(within):
            await self._idle.wait()
        return not self._flights

    async def run(self, grace: float) -> None:
        """Refuse new requests, give the running ones `grace` seconds, then end them."""
        self.draining = True
        self.retry_after = max(grace, 1.0)
        if self._flights:
            log.info("shutting down: %d request(s) get %gs to finish", self.running, grace)
        if await self._settled(grace):
            return
        log.warning("shutting down: ending %d request(s) still running", self.running)
        err = ShuttingDown(
            "The server shut down before this reply was finished.", retry_after=self.retry_after
        )
        for flight in list(self._flights):
            flight.end(err)
        if self._flights:
            self._idle.clear()  # set by a cut_short, not by the last one ending
        await self._stop_jobs()
        if not await self._settled(AFTER_GRACE):
            log.warning("shutting down: %d request(s) did not end", self.running)


class DrainGate:
    """ASGI middleware: while draining, a 503 for each new request; otherwise each request
    is tracked until it ends."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.drain.draining:
            await send({"type": "websocket.close", "code": WS_SERVICE_RESTART, "reason": ""})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            await _refuse(scope, receive, send, self.drain.refusal())
            return
        flight = Flight(scope)
        scope[FLIGHT_KEY] = flight

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                flight.started = True
            await send(message)

        with self.drain.track(flight):
            with flight.cancel:
                await self.app(scope, receive, sending)
            if flight.ended_by is not None and not flight.started:
                await _refuse(scope, receive, send, flight.ended_by)


async def _refuse(scope: Scope, receive: Receive, send: Send, err: HearthError) -> None:
    response = error_response(scope["path"], err)
    response.headers["Connection"] = "close"  # the connection is not kept for another
    await response(scope, receive, send)
