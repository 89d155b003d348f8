"""BodyLimit: request bodies over the limit refused with a 413 in the surface's shape,
bodies under it replayed whole to the app, read as JSON whatever their Content-Type."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hearth.api.limits import BodyLimit
from tests.api.asgi import DISCONNECT, Client, Message, body, http_scope

LIMIT = 50


class App:
    """Reads the whole body (and `extra` messages after it), then answers 200."""

    def __init__(self, extra: int = 0) -> None:
        self.extra = extra
        self.scope: dict[str, Any] | None = None
        self.messages: list[Message] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        if scope["type"] == "http":
            while True:
                message = await receive()
                self.messages.append(message)
                if not message.get("more_body", False):
                    break
            for _ in range(self.extra):
                self.messages.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def declaring(length: str | None) -> dict:
    return http_scope() if length is None else http_scope(content_length=length)


async def call(scope: dict, client: Client, app: App | None = None) -> App:
    app = app or App()
    await asyncio.wait_for(BodyLimit(app, LIMIT)(scope, client.receive, client.send), 5)
    return app


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    client = Client(body(b"x" * 60))
    app = await call(http_scope(content_length="60"), client)
    assert app.scope is None  # the app never ran
    assert client.reads == 0
    assert client.status == 413
    error = client.json()["error"]
    assert error["code"] == "payload_too_large" and f"{LIMIT} bytes" in error["message"]


async def test_an_ollama_path_gets_the_ollama_error_shape() -> None:
    client = Client()
    await call(http_scope("/api/chat", content_length="51"), client)
    assert client.status == 413
    assert set(client.json()) == {"error"} and isinstance(client.json()["error"], str)


@pytest.mark.parametrize("declared", [None, "10", "not-a-number"])
async def test_a_body_that_outgrows_the_limit_is_refused_however_declared(
    declared: str | None,
) -> None:
    scope = declaring(declared)
    client = Client(body(b"x" * 30, more=True), body(b"x" * 21))
    app = await call(scope, client)
    assert app.scope is None
    assert client.status == 413


@pytest.mark.parametrize("declared", [str(LIMIT), None, "not-a-number"])
async def test_a_body_at_the_limit_reaches_the_app_whole(declared: str | None) -> None:
    scope = declaring(declared)
    client = Client(body(b"a" * 20, more=True), body(b"b" * 20, more=True), body(b"c" * 10))
    app = await call(scope, client)
    assert app.messages == [body(b"a" * 20 + b"b" * 20 + b"c" * 10)]
    assert client.status == 200


async def test_after_the_body_the_app_reads_from_the_client_again() -> None:
    client = Client(body(b"{}"), DISCONNECT)
    app = await call(http_scope(), client, App(extra=1))
    assert app.messages == [body(b"{}"), DISCONNECT]


async def test_a_disconnect_while_the_body_is_read_is_passed_on() -> None:
    client = Client(body(b"{", more=True), DISCONNECT)
    app = await call(http_scope(), client, App(extra=2))
    # the part that came, then the disconnect, without reading past it
    assert app.messages == [body(b"{"), DISCONNECT, DISCONNECT]
    assert client.reads == 2


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain", "application/json"]
)
async def test_api_bodies_are_read_as_json(content_type: str | None) -> None:
    scope = http_scope() if content_type is None else http_scope(content_type=content_type)
    scope["headers"].append((b"authorization", b"Bearer k"))
    app = await call(scope, Client(body(b"{}")))
    assert app.scope is scope  # the same scope: the router's notes on it are read outside
    assert [v for k, v in scope["headers"] if k == b"content-type"] == [b"application/json"]
    assert (b"authorization", b"Bearer k") in scope["headers"]


async def test_multipart_bodies_and_reads_keep_their_content_type() -> None:
    upload = http_scope(content_type="multipart/form-data; boundary=x")
    await call(upload, Client(body(b"--x--")))
    assert dict(upload["headers"])[b"content-type"] == b"multipart/form-data; boundary=x"
    listing = http_scope("/v1/models", method="GET", content_type="text/plain")
    await call(listing, Client(body(b"")))
    assert dict(listing["headers"])[b"content-type"] == b"text/plain"


async def test_other_connections_pass_through_untouched() -> None:
    client = Client()
    scope = {"type": "websocket", "path": "/v1/ws", "headers": [(b"content-length", b"999")]}
    app = await call(scope, client)
    assert app.scope is scope and client.reads == 0
    assert client.status == 200
