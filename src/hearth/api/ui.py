"""The web chat page: `/` for browsers (see api/ollama/root.py) and its files under /ui.

Plain static files shipped inside the package; the page talks to the public API
(/v1/models, /v1/ws, /v1/conversations) like any other client.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

UI_PREFIX = "/ui"

# The page builds every node from model text with textContent; this policy is the second
# line: no inline script or handler runs, nothing loads from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Vary": "Accept",
}


def page() -> HTMLResponse:
    html = files("hearth").joinpath("ui", "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers=PAGE_HEADERS)


def assets() -> StaticFiles:
    return StaticFiles(packages=[("hearth", "ui")])
