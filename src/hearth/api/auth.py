"""The one gate: which requests need an API key, and whether they brought a valid one.

Every HTTP request and WebSocket handshake passes `AuthGate` before any route sees it, so
a route is behind the key by construction. Only a few paths are open (`/health`, the
chat page's shell, and what the operator opens); any other path needs the key however it
is spelled: `//v1/models`, `/v1/models/`, `/./v1/models`, `/V1/models` or a HEAD are
refused like `/v1/models` (the router then 404s or redirects what it does not match).
What a stored key has running is held in the keyring's watch, which ends it when the
key is revoked (services/key_watch.py).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum

from starlette.types import ASGIApp, Receive, Scope, Send

from hearth.api.drain import FLIGHT_KEY, Flight
from hearth.api.errors import error_response
from hearth.api.ui import UI_PREFIX
from hearth.core.config import Settings
from hearth.core.errors import HearthError, Unauthorized
from hearth.core.principal import ANONYMOUS, OPEN, Principal, act_as, surface_of
from hearth.services.keys import Keyring

DOCS_URL = "/docs"
OPENAPI_URL = "/openapi.json"
DOCS_PATHS = frozenset({DOCS_URL, DOCS_URL + "/oauth2-redirect", OPENAPI_URL})
METRICS_PATH = "/metrics"
ALWAYS_OPEN = frozenset({"/", "/health"})

BEARER_PROTOCOL = "bearer."  # a browser's WebSocket offers its key as this subprotocol
# Sockets that may present the key in their first frame (api/ws/socket.py checks it
# there); any other WebSocket without a valid key is refused at the handshake.
FRAME_AUTH_PATHS = frozenset({"/v1/ws"})
SCOPE_KEY = "hearth.auth"  # where the gate leaves its verdict for those sockets

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as x-api-key: YOUR_KEY."
)
WRONG_KEY = "Incorrect API key provided."


class Verdict(StrEnum):
    OPEN = "open"  # no key needed: none configured, or an open path
    GRANTED = "granted"
    MISSING = "missing"
    WRONG = "wrong"

    @property
    def allowed(self) -> bool:
        return self in {Verdict.OPEN, Verdict.GRANTED}


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    principal: Principal = ANONYMOUS  # whom an allowed request acts for


def normalise(path: str) -> str:
    """The path with empty and dot segments resolved and no trailing slash."""
    resolved = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + resolved.lstrip("/")  # normpath keeps a leading "//"


def open_paths(settings: Settings) -> frozenset[str]:
    extra = set()
    if settings.open_docs:
        extra |= DOCS_PATHS
    if settings.open_metrics:
        extra.add(METRICS_PATH)
    return ALWAYS_OPEN | extra


def is_open(path: str, opened: frozenset[str]) -> bool:
    # Only a path already in normal form may be open: the router matches the path as
    # written, and `/v1/models/{model_id:path}` would take `/v1/models/../../health`.
    if path != normalise(path):
        return False
    return path in opened or path.startswith(UI_PREFIX + "/")  # the page's files


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def bearer_subprotocol(scope: Scope) -> str | None:
    offered: list[str] = scope.get("subprotocols") or []
    return next((p for p in offered if p.startswith(BEARER_PROTOCOL)), None)


def presented_key(scope: Scope) -> str | None:
    """`Authorization: Bearer KEY`, else `x-api-key: KEY` (Anthropic's SDK), else, for a
    WebSocket, a `bearer.KEY` subprotocol."""
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
    if token is None:
        token = headers.get(b"x-api-key", b"").decode("latin-1").strip() or None
    if token is None and scope["type"] == "websocket":
        protocol = bearer_subprotocol(scope)
        if protocol is not None:
            token = protocol.removeprefix(BEARER_PROTOCOL) or None
    return token


async def check_key(keyring: Keyring, key: object) -> Decision:
    """The decision on a presented key, wherever it came from (a header, a WebSocket
    subprotocol or auth frame)."""
    if not await keyring.enabled():
        return Decision(Verdict.OPEN, OPEN)
    if key is None:
        return Decision(Verdict.MISSING)
    principal = await keyring.identify(key) if isinstance(key, str) else None
    if principal is not None:
        return Decision(Verdict.GRANTED, principal)
    return Decision(Verdict.WRONG)


async def decide(scope: Scope, keyring: Keyring, opened: frozenset[str]) -> Decision:
    if is_open(scope["path"], opened):
        # An open path still acts for the key it was given, if that key is good.
        key = presented_key(scope)
        granted = await check_key(keyring, key) if key is not None else None
        principal = granted.principal if granted and granted.verdict.allowed else ANONYMOUS
        return Decision(Verdict.OPEN, principal)
    return await check_key(keyring, presented_key(scope))


def socket_decision(scope: Scope) -> Decision:
    """What the gate decided for a FRAME_AUTH_PATHS socket (missing: an auth frame may
    still bring the key)."""
    decision: Decision = scope[SCOPE_KEY]
    return decision


class AuthGate:
    """Pure ASGI middleware in front of every route; see the module's docstring."""

    def __init__(self, app: ASGIApp, keyring: Keyring, settings: Settings) -> None:
        self.app = app
        self.keyring = keyring
        self.opened = open_paths(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        try:
            decision = await decide(scope, self.keyring, self.opened)
        except HearthError as exc:  # the key database out of reach: refused, as a 503
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1011, "reason": ""})
            else:
                await error_response(normalise(scope["path"]), exc)(scope, receive, send)
            return
        verdict = decision.verdict
        via = surface_of(normalise(scope["path"]))
        if verdict.allowed:
            act_as(decision.principal, via)
        if scope["type"] == "websocket":
            if verdict.allowed or scope["path"] in FRAME_AUTH_PATHS:
                scope[SCOPE_KEY] = decision
                await self.app(scope, receive, send)
            else:  # a close before the accept: the handshake gets a 403
                await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        if verdict.allowed:
            key_id = decision.principal.key_id
            flight = scope.get(FLIGHT_KEY)
            # Only a stored key can be revoked, and only a model surface has work worth
            # ending (an admin request revoking its own key still gets its answer).
            if key_id is None or via == "other" or not isinstance(flight, Flight):
                await self.app(scope, receive, send)
                return
            with self.keyring.watch.hold(key_id, flight.revoke):
                await self.app(scope, receive, send)
            return
        err = Unauthorized(MISSING_KEY if verdict is Verdict.MISSING else WRONG_KEY)
        # The shape of the surface the path names, however it is spelled (//api/tags).
        await error_response(normalise(scope["path"]), err)(scope, receive, send)
