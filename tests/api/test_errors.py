"""api/errors.py: each surface's error shape, and Starlette's own refusals in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from hearth.api.errors import error_body, install_error_handlers, ollama_error_body
from hearth.core.errors import MethodNotAllowed, Overloaded


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
    assert (r.status_code, r.headers["retry-after"]) == (429, "2")
    assert r.json()["error"]["code"] == "server_overloaded"
    r = client.get("/api/thing/busy")
    assert (r.status_code, r.headers["retry-after"]) == (503, "2")


def test_the_ollama_body_is_the_message_alone() -> None:
    err = MethodNotAllowed("nope")
    assert ollama_error_body(err) == {"error": "nope"} == error_body("/api/chat", err)
    assert error_body("/v1/chat/completions", err)["error"]["code"] == "method_not_allowed"
