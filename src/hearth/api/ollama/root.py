"""The liveness probes Ollama clients send: GET/HEAD / and GET/HEAD /api/version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from hearth import __version__
from hearth.api import ui

router = APIRouter()  # open (api/auth.py): clients probe / before they send any key
api_router = APIRouter()  # behind the API key, with the rest of /api

RUNNING = "Ollama is running"


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def root(request: Request) -> Response:
    # A browser (it asks for HTML) gets the chat page; Ollama's clients, curl and HEAD
    # probes get the liveness line they look for.
    if request.method == "GET" and wants_html(request):
        return ui.page()
    return PlainTextResponse(RUNNING, headers={"Vary": "Accept"})


@api_router.get("/version")
@api_router.head("/version", include_in_schema=False)  # apart: see /api/tags
async def version() -> dict[str, str]:
    return {"version": __version__}
