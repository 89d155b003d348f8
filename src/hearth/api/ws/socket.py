"""GET /v1/ws: chat over one long-lived WebSocket, several requests in flight by id.

One `Connection` per socket: it authenticates, reads frames, hands chat requests to a
`ChatSession` and sends what the session reports as frames. Frames are sent under a
lock, since every request's task writes to the same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, NoReturn
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from hearth.api import auth
from hearth.api.errors import ws_error_frame
from hearth.api.state import AppState, State
from hearth.api.ws import frames
from hearth.core import principal
from hearth.core.errors import EngineError, HearthError
from hearth.core.principal import act_as, current
from hearth.services import chat_history
from hearth.services.chat_session import ChatSession, Reply
from hearth.services.limits import Lease, holding, limited

log = logging.getLogger(__name__)

router = APIRouter()

AUTH_WINDOW_S = 10.0  # how long an auth frame may take to come, when one is needed

# Close codes (RFC 6455 §7.4.1).
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009


class _Closed(Exception):
    """The connection is over: the client left, or the server closed it."""


class Connection:
    def __init__(self, websocket: WebSocket, state: AppState, verdict: auth.Verdict) -> None:
        self.ws = websocket
        self.state = state
        self.session = ChatSession(state.registry, self)
        self.verdict = verdict  # the gate's, on the handshake's header or subprotocol
        self.authed = verdict.allowed
        self.last_activity = time.monotonic()
        self.pinged = False  # a ping was sent for the current silence
        self.auth_deadline = self.last_activity + min(AUTH_WINDOW_S, state.settings.ws_idle_timeout)
        self._send_lock = asyncio.Lock()
        self._turns: dict[str, chat_history.Turn] = {}  # requests continuing a conversation
        self._task: asyncio.Task[Any] | None = None  # the one serving the socket
        self._key_id: str | None = None  # the stored key it is watched under
        self._revoked = False
        self._leases: dict[str, Lease] = {}  # requests of a key with limits

    async def _release(self, rid: str) -> None:
        """A request ended: its key's concurrency slot is free, before the client hears."""
        lease = self._leases.pop(rid, None)
        if lease is not None:
            await lease.release()

    # ---- what the session reports ------------------------------------------------------

    async def delta(self, rid: str, text: str) -> None:
        await self.send(frames.delta(rid, text))

    async def reasoning(self, rid: str, text: str) -> None:
        await self.send(frames.reasoning(rid, text))

    async def done(self, rid: str, reply: Reply) -> None:
        self.last_activity = time.monotonic()
        await self._release(rid)
        turn = self._turns.pop(rid, None)
        if turn is not None:
            # Stored before `done` is sent: a client that reads the conversation next sees it.
            await chat_history.record(self.state.conversations, turn, reply)
        await self.send(frames.done(rid, reply))

    async def failed(self, rid: str, err: HearthError) -> None:
        self._turns.pop(rid, None)  # a failed turn did not happen
        await self._release(rid)
        if isinstance(err, EngineError):
            log.error("engine error on /v1/ws request %s: %s", rid, err.message)
        self.last_activity = time.monotonic()
        await self.send(ws_error_frame(err, rid))

    # ---- the socket --------------------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        async with self._send_lock:
            try:
                await self.ws.send_text(text)
            except (WebSocketDisconnect, WebSocketDisconnected, OSError):
                raise _Closed() from None

    async def close(self, code: int, reason: str) -> NoReturn:
        """Close the socket and end the connection's handler (by raising _Closed)."""
        with contextlib.suppress(Exception):  # the client may be gone already
            await self.ws.close(code, reason)
        raise _Closed()

    def revoke(self, err: HearthError) -> None:
        """Its key was revoked: the socket is closed (1008) and its requests stopped."""
        if not self._revoked and self._task is not None:
            self._revoked = True
            self._task.cancel()

    def _watch(self) -> None:
        """Watched under its key from when it is authenticated (services/key_watch.py)."""
        if self._key_id is not None:  # a second auth frame: watched under its key now
            self.state.keyring.watch.discard(self._key_id, self.revoke)
        self._key_id = principal.current().key_id
        if self._key_id is not None:
            self.state.keyring.watch.add(self._key_id, self.revoke)

    async def serve(self) -> None:
        self._task = asyncio.current_task()
        try:
            if self.verdict is auth.Verdict.WRONG:
                await self.close(POLICY_VIOLATION, "invalid API key")
            if self.authed:
                self._watch()
            while True:
                message = await self._receive()
                self.last_activity = time.monotonic()
                self.pinged = False
                await self._handle(message)
        except _Closed:
            pass
        except asyncio.CancelledError:
            if not self._revoked:
                raise
            assert self._task is not None
            self._task.uncancel()  # this cancel was ours: the closing below goes on
        finally:
            if self._key_id is not None:
                self.state.keyring.watch.discard(self._key_id, self.revoke)
            stopped = await self.session.close()
            for rid in list(self._leases):
                await self._release(rid)
            if self._revoked:  # after the session: none of its sends holds the lock now
                with contextlib.suppress(Exception):  # the client may be gone already
                    await self.ws.close(POLICY_VIOLATION, "API key revoked or expired")
            # Replies cut off by the connection's end are kept as far as they got, as if
            # the client had cancelled them.
            for rid, text in stopped.items():
                turn = self._turns.pop(rid, None)
                if turn is not None:
                    reply = Reply(text, "cancelled")
                    await chat_history.record(self.state.conversations, turn, reply)

    async def _authenticate(self, key: object) -> None:
        decision = await auth.check_key(self.state.keyring, key)
        if not decision.verdict.allowed:
            await self.close(POLICY_VIOLATION, "invalid API key")
        act_as(decision.principal, "ws")
        self.authed = True
        self._watch()

    async def _receive(self) -> dict[str, Any]:
        """The next message, meanwhile enforcing the auth window and the idle timeout."""
        idle = self.state.settings.ws_idle_timeout
        while True:
            now = time.monotonic()
            if not self.authed:
                wait = self.auth_deadline - now
                if wait <= 0:
                    await self.close(POLICY_VIOLATION, "authentication required")
            elif self.session.in_flight:
                self.last_activity = now  # a reply on its way is not idleness
                wait = idle / 2
            else:
                silent = now - self.last_activity
                if silent >= idle:
                    await self.close(GOING_AWAY, "idle timeout")
                if silent >= idle / 2 and not self.pinged:
                    self.pinged = True
                    await self.send({"type": "ping"})
                wait = (idle if self.pinged else idle / 2) - silent
            try:
                async with asyncio.timeout(max(wait, 0.01)):
                    message = await self.ws.receive()
            except TimeoutError:
                continue
            if message["type"] == "websocket.disconnect":
                raise _Closed()
            return message

    async def _handle(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        raw = text.encode() if text is not None else message.get("bytes") or b""
        if len(raw) > self.state.settings.max_request_bytes:
            await self.close(MESSAGE_TOO_BIG, "frame too large")
        frame: dict[str, Any] = {}
        try:
            frame = frames.parse(text if text is not None else message.get("bytes"))
            await self._dispatch(frame)
        except HearthError as err:
            await self.send(ws_error_frame(err, frames.frame_id(frame)))
        except _Closed:
            raise
        except Exception:
            # A bug answers this frame with an error; the connection and the others go on.
            log.exception("unhandled error on a /v1/ws frame")
            err = HearthError("The server had an error while processing your frame.")
            await self.send(ws_error_frame(err, frames.frame_id(frame)))

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frames.kind(frame)
        if kind == "auth":
            await self._authenticate(frame.get("key"))
            await self.send({"type": "authenticated"})
        elif not self.authed:
            # Before a valid key, anything but an auth frame ends the connection.
            await self.close(POLICY_VIOLATION, "authentication required")
        elif kind == "chat":
            rid = frames.required_id(frame)
            body = frames.chat_frame(frame)
            # Each chat message is a request of the key's: admitted against its limits
            # (refused as an error frame), holding a concurrency slot until it ends.
            principal = current()
            lease = await self.state.limiter.admit(principal) if limited(principal) else None
            try:
                history, turn = [], None
                if body.conversation is not None:
                    history, turn = await chat_history.begin(
                        self.state.conversations, body.conversation, frames.turn_messages(body)
                    )
                request = frames.generation_request(body, self.state.registry, history)
                with holding(lease):
                    self.session.start(rid, request)
            except BaseException:
                if lease is not None:
                    await lease.release()
                raise
            if lease is not None:
                self._leases[rid] = lease
            if turn is not None:  # after start: a refused duplicate id keeps the first's turn
                self._turns[rid] = turn
        elif kind == "cancel":
            await self.session.cancel(frames.required_id(frame))
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind != "pong":  # a pong answers the server's ping: nothing more to do
            raise frames.unknown_type(kind)


def _cross_site(websocket: WebSocket, allowed: list[str]) -> bool:
    """A browser page from another site, not one of the --cors-origin ones. Browsers send
    Origin on every WebSocket and, unlike fetch, apply no same-origin rule to what the
    page then reads."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return False  # not a browser
    if origin in allowed or "*" in allowed:
        return False
    return urlsplit(origin).netloc.lower() != websocket.headers.get("host", "").lower()


@router.websocket("/v1/ws")
async def chat_socket(websocket: WebSocket, state: State) -> None:
    if not await state.keyring.enabled() and _cross_site(websocket, state.settings.cors_origins):
        # Without keys, any site the user visits could otherwise use the models through
        # the user's browser. With keys, a page from elsewhere must present one.
        await websocket.close(POLICY_VIOLATION)  # before accept: a 403 to the handshake
        return
    # Browsers cannot set headers, so they offer the key as a subprotocol; the handshake
    # only succeeds if the server echoes the entry it chose.
    await websocket.accept(subprotocol=auth.bearer_subprotocol(websocket.scope))
    await Connection(websocket, state, auth.socket_decision(websocket.scope).verdict).serve()
