"""api/errors.py: each surface's error shape, and Starlette's own refusals in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from hearth.api.errors import (
    error_body,
    install_error_handlers,
    ollama_error_body,
    ws_error_frame,
)
from hearth.core.errors import MethodNotAllowed, Overloaded, QuotaExceeded, RateLimited


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)

    for path in ("/v1/thing", "/api/thing"):

        @app.post(path)
        async def post() -> dict[str, str]:
            return {}

        @app.get(f"{path}/teapot")
        async def teapot() -> None:
            raise HTTPException(418, "short and stout")

        @app.get(f"{path}/busy")
        async def busy() -> None:
            raise Overloaded("no slot", retry_after=2.4)

        @app.get(f"{path}/limited")
        async def limited() -> None:
            raise RateLimited("over the tpm", retry_after=2.4, tokens=True)

        @app.get(f"{path}/spent")
        async def spent() -> None:
            raise QuotaExceeded("budget spent", retry_after=3600)

    with TestClient(app) as c:
        yield c


def test_method_not_allowed_is_405_in_each_shape(client: TestClient) -> None:
    r = client.get("/v1/thing")
    assert r.status_code == 405
    assert r.json()["error"] == {
        "message": "Method GET is not allowed for /v1/thing.",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }
    r = client.get("/api/thing")
    assert r.status_code == 405
    assert r.json() == {"error": "Method GET is not allowed for /api/thing."}


def test_another_starlette_refusal_keeps_its_status(client: TestClient) -> None:
    r = client.get("/v1/thing/teapot")
    assert r.status_code == 418
    assert r.json()["error"]["message"] == "short and stout"
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = client.get("/api/thing/teapot")
    assert (r.status_code, r.json()) == (418, {"error": "short and stout"})


def test_a_full_queue_is_429_for_openai_and_503_for_ollama(client: TestClient) -> None:
    r = client.get("/v1/thing/busy")
    assert (r.status_code, r.headers["retry-after"]) == (429, "3")  # 2.4 s, rounded up
    assert r.json()["error"]["code"] == "server_overloaded"
    r = client.get("/api/thing/busy")
    assert (r.status_code, r.headers["retry-after"]) == (503, "3")


def test_the_ollama_body_is_the_message_alone() -> None:
    err = MethodNotAllowed("nope")
    assert ollama_error_body(err) == {"error": "nope"} == error_body("/api/chat", err)
    assert error_body("/v1/chat/completions", err)["error"]["code"] == "method_not_allowed"


def test_a_key_over_its_limits_is_429_on_every_surface(client: TestClient) -> None:
    r = client.get("/v1/thing/limited")
    assert (r.status_code, r.headers["retry-after"]) == (429, "3")  # rounded up
    assert r.json()["error"] == {
        "message": "over the tpm", "type": "tokens", "param": None, "code": "rate_limit_exceeded"
    }  # fmt: skip
    r = client.get("/v1/thing/spent")
    assert (r.status_code, r.headers["retry-after"]) == (429, "3600")
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    # Ollama's clients get the 429 too: unlike a full queue, retrying elsewhere won't help.
    r = client.get("/api/thing/limited")
    assert (r.status_code, r.headers["retry-after"], r.json()) == (
        429,
        "3",
        {"error": "over the tpm"},
    )
    r = client.get("/api/thing/spent")
    assert (r.status_code, r.json()) == (429, {"error": "budget spent"})


def test_a_limit_in_the_websocket_error_frame() -> None:
    frame = ws_error_frame(RateLimited("too many", retry_after=20.0), "r1")
    assert frame == {
        "type": "error", "id": "r1", "code": "rate_limit_exceeded", "message": "too many",
        "retry_after": 20.0,
    }  # fmt: skip
    assert RateLimited("x", retry_after=1).type == "requests"
