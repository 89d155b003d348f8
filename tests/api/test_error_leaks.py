"""No error body carries a stack trace, a file path of the server or SQL: each kind of
failure is provoked (a model that fails to load, a bug, the database, bad input) and its
body read on every surface it reaches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

import hearth
from hearth.app import create_app
from hearth.engine.fake import FakeBackend
from tests.conftest import make_settings, registry_of

GGUF = "/srv/models/private/secret-weights.gguf"
_SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|FROM|WHERE)\b|sqlite|sqlalchemy|asyncpg"
)


def assert_clean(body: str, *paths: Path | str) -> None:
    assert "Traceback" not in body and 'File "' not in body, body
    assert not _SQL.search(body), body
    for path in (GGUF, Path(hearth.__file__).parent, Path(sqlalchemy.__file__).parent, *paths):
        assert str(path) not in body, body


class Exploding(FakeBackend):
    """A bug whose message names SQL and a file."""

    async def start(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"SELECT * FROM secrets WHERE path = '{GGUF}'")

    async def embed(self, inputs, *, truncate=False):  # type: ignore[no-untyped-def]
        raise OSError(2, "No such file or directory", GGUF)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("leaks")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    registry = registry_of(FakeBackend("ok"), Exploding("explodes"))

    async def unloadable() -> FakeBackend:
        # What llama-cpp-python says when a GGUF will not load.
        raise ValueError(f"Failed to load model from file: {GGUF}")

    registry.register("unloadable", unloadable)
    app = create_app(make_settings(data_dir), registry, preload=False)
    # raise_server_exceptions=False: the client gets what a real server would send.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.mark.parametrize("model", ["unloadable", "explodes"])
def test_engine_and_load_failures(client: TestClient, data_dir: Path, model: str) -> None:
    for path in ("/v1/chat/completions", "/api/chat"):
        r = client.post(path, json=_chat(model))
        assert r.status_code == 500
        assert_clean(r.text, data_dir)
    for path in ("/v1/embeddings", "/api/embed"):
        r = client.post(path, json={"model": model, "input": "hi"})
        assert r.status_code == 500
        assert_clean(r.text, data_dir)


def test_health_says_a_model_failed_but_not_where_it_lives(client: TestClient) -> None:
    client.post("/v1/chat/completions", json=_chat("unloadable"))
    r = client.get("/health")
    assert r.status_code == 503
    failed = next(m for m in r.json()["models"] if m["id"] == "unloadable")
    assert failed["state"] == "failed" and "could not be loaded" in failed["error"]
    assert_clean(r.text)


def test_validation_errors(client: TestClient, data_dir: Path) -> None:
    bad = [
        ("/v1/chat/completions", {"model": "ok", "messages": "not a list"}),
        ("/v1/chat/completions", {"model": "ok", "messages": [{"role": "x"}]}),
        ("/v1/responses", {"model": "ok", "input": 12}),
        ("/api/chat", {"model": "ok", "messages": [{"content": 3}]}),
        ("/api/generate", {"model": "ok", "options": {"temperature": "hot"}}),
    ]
    for path, body in bad:
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, r.text)
        assert_clean(r.text, data_dir)
    r = client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert_clean(r.text, data_dir)


def test_database_faults(client: TestClient, data_dir: Path) -> None:
    store = client.app.state.hearth.store  # type: ignore[attr-defined]

    async def drop() -> None:
        async with store.db.write() as session:
            await session.execute(sqlalchemy.text("DROP TABLE conversation_items"))

    client.portal.call(drop)  # type: ignore[union-attr]
    made = client.post("/v1/conversations", json={"items": [{"role": "user", "content": "hi"}]})
    assert made.status_code >= 500
    assert_clean(made.text, data_dir)
    r = client.post("/v1/responses", json={"model": "ok", "input": "hi", "store": True})
    assert_clean(r.text, data_dir)
