"""The auth gate against a real server with a key: every route refuses a keyless request
(found by walking app.routes, so a route added later is covered), however its path is
spelled; the key by `Authorization: Bearer` or `x-api-key`; open paths stay open."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.e2e.ws_client import chat, next_frame, send

KEY = "sk-gate-test-key"
BEARER = {"Authorization": f"Bearer {KEY}"}
OPEN = {"/", "/health"}  # and the page's files under /ui/


def start(data_dir: Path, **overrides: Any) -> LiveServer:
    settings = make_settings(data_dir, api_keys=[KEY], **overrides)
    return LiveServer(settings, registry_of(FakeBackend(MODEL))).start()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start(tmp_path_factory.mktemp("gate"))
    yield server
    server.stop()


def raw(
    server: LiveServer, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A request with the path sent exactly as written (httpx would tidy `/./` and `..`)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def http_routes(server: LiveServer) -> Iterator[tuple[str, str]]:
    """(method, path) of every HTTP route, path parameters filled in."""
    for method, template in _walk(server.app.routes):
        if method != "WEBSOCKET":
            yield method, re.sub(r"\{[^}]+\}", "x", template)


def _walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # an included router
        if contexts is not None:
            for context in contexts():
                # A WebSocket route's context leaves `path` empty; its Starlette route has it.
                path = context.path or context.starlette_route.path
                yield from _entries(context.original_route, path)
        else:
            yield from _entries(route, route.path_format)


def _entries(route: Any, template: str) -> Iterator[tuple[str, str]]:
    if hasattr(route, "routes") and not hasattr(route, "methods"):  # the /ui mount
        yield "GET", template  # /ui/{path}
        return
    methods = getattr(route, "methods", None)
    for method in sorted(methods or {"WEBSOCKET"}):
        yield method, template


def test_every_route_refuses_a_keyless_request(keyed: LiveServer) -> None:
    routes = sorted(set(http_routes(keyed)))
    assert len(routes) > 40  # the walk found the routers' routes, not just the app's own
    opened = set()
    for method, path in routes:
        status, _, body = raw(keyed, method, path)
        if status != 401:
            opened.add(path)
            continue
        if method != "HEAD":
            assert json.loads(body)["error"], (method, path)
    assert opened == OPEN | {"/ui/x"}  # /ui/x: a 404 from the static files, no key needed
    for path in ("/metrics", "/docs", "/openapi.json", "/api/version", "/v1/models"):
        assert (path in {p for _, p in routes}) and raw(keyed, "GET", path)[0] == 401


async def test_every_socket_refuses_a_keyless_connection(keyed: LiveServer) -> None:
    sockets = [path for method, path in _walk(keyed.app.routes) if method == "WEBSOCKET"]
    assert sockets == ["/v1/ws"]
    for path in [*sockets, "/v1/other-socket", "//v1/ws"]:
        assert await socket_refused(keyed, path), path


async def socket_refused(server: LiveServer, path: str, **kwargs: Any) -> bool:
    """Refused at the handshake, or closed with 1008 before a single frame is served."""
    url = f"ws://127.0.0.1:{server.port}{path}"
    try:
        async with connect(url, open_timeout=10, close_timeout=5, **kwargs) as ws:
            try:
                await send(ws, chat("r", "Hi", max_tokens=2))
                frame = await next_frame(ws, within=10)
            except ConnectionClosed as closed:
                return closed.rcvd is not None and closed.rcvd.code == 1008
            raise AssertionError(f"{path} served {frame}")
    except InvalidStatus as refused:
        return refused.response.status_code == 403


TRICKS = [
    "//v1/models",
    "/v1//models",
    "/v1%2Fmodels",
    "/./v1/models",
    "/v1/./models",
    "/%2e/v1/models",
    "/health/../v1/models",
    "/ui/../v1/models",
    "/ui/..%2Fv1/models",
    "/v1/models/",
    "/V1/models",
    "/v1/models/../../health",
    "/v1/models/..%2F..%2Fhealth",
    "/v1/models%2F..%2F..%2Fhealth",
    "//health",
    "/health/",
    "/HEALTH",
    "/metrics/",
    "//metrics",
    "/docs/",
    "/openapi.json/",
    "/DOCS",
    "//api/tags",
    "/api//tags",
    "/api/tags/",
    "/nothing/here",
]


@pytest.mark.parametrize("path", TRICKS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_no_spelling_of_a_path_gets_past_the_key(keyed: LiveServer, method: str, path: str) -> None:
    status, headers, body = raw(keyed, method, path)
    assert status == 401, (method, path, body)
    if method != "HEAD":
        error = json.loads(body)["error"]
        if "/api/" in path:  # Ollama's shape, for the path however it is spelled
            assert isinstance(error, str)
        else:
            assert error["code"] == "invalid_api_key" and headers["www-authenticate"] == "Bearer"
    # With the key, the same request reaches the router (which serves, redirects or 404s it).
    assert raw(keyed, method, path, BEARER)[0] != 401


def test_open_paths_need_no_key(keyed: LiveServer) -> None:
    assert raw(keyed, "GET", "/health")[0] == 200
    assert raw(keyed, "GET", "/")[2] == b"Ollama is running"
    assert raw(keyed, "HEAD", "/")[0] == 200
    page = raw(keyed, "GET", "/", {"Accept": "text/html"})
    assert page[0] == 200 and page[1]["content-type"].startswith("text/html")
    for name in ("app.js", "socket.js", "style.css"):
        assert raw(keyed, "GET", f"/ui/{name}")[0] == 200


def test_error_shapes_per_surface(keyed: LiveServer) -> None:
    r = httpx.get(f"{keyed.url}/v1/models")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in r.json()["error"]["message"]
    wrong = httpx.get(f"{keyed.url}/v1/models", headers={"Authorization": "Bearer sk-wrong-1"})
    assert wrong.json()["error"]["message"] == "Incorrect API key provided."
    r = httpx.get(f"{keyed.url}/api/tags")
    assert r.status_code == 401 and "www-authenticate" not in r.headers
    assert set(r.json()) == {"error"} and isinstance(r.json()["error"], str)


def test_key_by_bearer_or_x_api_key(keyed: LiveServer) -> None:
    for headers in (BEARER, {"x-api-key": KEY}, {"authorization": f"bearer {KEY}"}):
        r = httpx.get(f"{keyed.url}/v1/models", headers=headers)
        assert r.status_code == 200 and r.json()["data"][0]["id"] == MODEL
        assert httpx.get(f"{keyed.url}/metrics", headers=headers).status_code == 200
    for headers in ({"x-api-key": "sk-wrong-key-1"}, {"Authorization": f"Basic {KEY}"}):
        assert httpx.get(f"{keyed.url}/v1/models", headers=headers).status_code == 401


def test_ollama_client_with_a_bearer_header(keyed: LiveServer) -> None:
    with ollama.Client(host=keyed.url, headers=BEARER) as good:
        assert [m.model for m in good.list().models] == [MODEL]
        reply = good.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert reply.done and reply.message.content
    with ollama.Client(host=keyed.url) as anonymous:
        with pytest.raises(ollama.ResponseError) as info:
            anonymous.list()
        assert info.value.status_code == 401


async def test_socket_key_by_x_api_key_header(keyed: LiveServer) -> None:
    url = f"ws://127.0.0.1:{keyed.port}/v1/ws"
    async with connect(url, additional_headers={"x-api-key": KEY}) as ws:
        await send(ws, chat("r", "Hi", max_tokens=2))
        while (frame := await next_frame(ws, within=30))["type"] == "delta":
            pass
        assert frame["type"] == "done"
    assert await socket_refused(keyed, "/v1/ws", additional_headers={"x-api-key": "sk-bad-key"})


def test_operator_may_open_metrics_and_docs(tmp_path: Path) -> None:
    server = start(tmp_path, open_metrics=True, open_docs=True)
    try:
        for path in ("/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect"):
            assert raw(server, "GET", path)[0] == 200, path
        for path in ("/metrics/", "//docs", "/v1/models", "/api/tags"):
            assert raw(server, "GET", path)[0] == 401, path
    finally:
        server.stop()
