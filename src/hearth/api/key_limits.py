"""ASGI middleware enforcing a key's limits (services/limits.py) on the API surfaces.

Inside the auth gate, which has set whom the request acts for. A request of a key with
limits on `/v1/…` or `/api/…` is admitted (requests per minute, concurrent requests,
budget) or refused with a 429 in its surface's shape; admitted, it holds its
concurrency slot until its response ends (freed before its last byte goes out; a
generation's run frees it when it closes, before a stream's closing lines), and its
lease is the request's current one, so that the generation it starts takes its prompt
tokens and charges its completion tokens. Every `/v1` response of a limited key carries
OpenAI's x-ratelimit-* headers for the per-minute limits it has.

A key without limits passes with one attribute check.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.api.auth import normalise
from hearth.api.errors import error_response
from hearth.core.errors import HearthError
from hearth.core.principal import current
from hearth.services.limits import Lease, Limiter, holding, limited

LIMITED_PREFIXES = ("/v1/", "/api/")


def duration(seconds: float) -> str:
    """OpenAI's reset format, Go's duration: "20ms", "1s", "6m0s", "1h2m3.5s"."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rate_headers(lease: Lease, now: float) -> list[tuple[str, str]]:
    out = []
    for standing in lease.standings(now):
        kind = standing.kind
        out += [
            (f"x-ratelimit-limit-{kind}", str(standing.limit)),
            (f"x-ratelimit-remaining-{kind}", str(standing.remaining)),
            (f"x-ratelimit-reset-{kind}", duration(standing.reset)),
        ]
    return out


class KeyLimitGate:
    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = current()
        if scope["type"] != "http" or not limited(principal):
            await self.app(scope, receive, send)
            return
        path = normalise(scope["path"])
        if not path.startswith(LIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headed = path.startswith("/v1/")
        lease = Lease(self.limiter, principal)
        try:
            await lease.admit()
        except HearthError as err:  # over a limit (429), the database out of reach (503)
            response = error_response(path, err)
            if headed and err.status == 429:
                for name, value in rate_headers(lease, self.limiter.clock()):
                    response.headers[name] = value
            await response(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if headed and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in rate_headers(lease, self.limiter.clock()):
                    headers.append(name, value)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Free before the client sees the end: its next request may come at once.
                await lease.release()
            await send(message)

        try:
            with holding(lease):
                await self.app(scope, receive, sending)
        finally:
            await lease.release()
