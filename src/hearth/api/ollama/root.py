"""The liveness probes Ollama clients send: GET/HEAD / and GET/HEAD /api/version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from hearth import __version__

router = APIRouter()  # open: clients probe / before they send any key
api_router = APIRouter()  # behind the API key, with the rest of /api

RUNNING = "Ollama is running"


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def browser_home(request: Request) -> Response:
    # A browser asking for /. The web chat page will be served here; until then it gets
    # the same line as the clients.
    return PlainTextResponse(RUNNING)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def root(request: Request) -> Response:
    if wants_html(request):
        return await browser_home(request)
    return PlainTextResponse(RUNNING)


@api_router.api_route("/version", methods=["GET", "HEAD"])
async def version() -> dict[str, str]:
    return {"version": __version__}
