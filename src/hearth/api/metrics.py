"""GET /metrics (Prometheus text; with keys, open only with --open-metrics) and the
middleware that counts HTTP requests and WebSocket connections. Both exist only with
`--metrics` (the default)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.api.state import State
from hearth.services.metrics import CONTENT_TYPE, UNMATCHED, Metrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    assert state.metrics is not None  # the route is mounted only with metrics on
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)


def route_of(scope: Scope) -> str:
    """The template of the route that served the request (`/v1/responses/{response_id}`),
    never the path itself: ids in labels would make a new series per request."""
    route = scope.get("route")  # set on the scope, in place, by the router that matched
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return UNMATCHED
    # A route of an included router knows only its own part of the path ("/responses/
    # {response_id}"); the routers' prefixes are what precedes the part it matches. The
    # leftmost match keeps that part within those static prefixes, never a client's text.
    path: str = scope.get("path", "")
    regex = getattr(route, "path_regex", None)
    if regex is not None:
        for i, char in enumerate(path):
            if char == "/" and regex.match(path[i:]):
                return path[:i] + template
    return template


class HttpMetrics:
    """Outermost middleware: sees every request, those the others refuse (413) too."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts a reply

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.http_request(scope["method"], route_of(scope), status, elapsed)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def sending(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                self.metrics.websocket_opened()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if accepted:
                self.metrics.websocket_closed()
