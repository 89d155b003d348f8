"""/admin/models against a real server with fake models and keys on: load and unload by
hand under --max-loaded-models 1, an unload that waits for the request running on the
model (202), a load that waits for a place and then one that times out (503 in each
surface's shape), and the admin-only gate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hearth.engine.base import Backend
from hearth.engine.fake import FakeBackend
from hearth.engine.registry import ModelRegistry
from tests.conftest import LiveServer, make_settings

ADMIN = "sk-operator"
STORY = " ".join(f"word{i}" for i in range(400))


def _registry() -> ModelRegistry:
    registry = ModelRegistry(keep_alive=300, max_loaded=1, queue_timeout=30)
    for name in ("first", "second"):

        async def load(name: str = name) -> Backend:
            return FakeBackend(name, STORY, context_length=4096, token_delay=0.005)

        registry.register(name, load)
    return registry


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("admin-models"), api_keys=[ADMIN])
    live = LiveServer(settings, _registry()).start()
    yield live
    live.stop()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
        yield c


def _ps(http: httpx.Client) -> list[str]:
    return [m["name"] for m in http.get("/api/ps").json()["models"]]


def _states(http: httpx.Client) -> dict[str, str]:
    body = http.get("/admin/models").json()
    assert body["max_loaded"] == 1
    return {m["id"]: m["state"] for m in body["data"]}


def _chat(http: httpx.Client, model: str, path: str = "/v1/chat/completions") -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if path == "/api/chat":
        body["stream"] = False
    return http.post(path, json=body)


class Streaming:
    """A streamed reply on `model` that holds it until `finish()` reads the rest."""

    def __init__(self, http: httpx.Client, model: str) -> None:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        self._cm = http.stream("POST", "/v1/chat/completions", json=body)
        self._lines = self._cm.__enter__().iter_lines()
        next(line for line in self._lines if line.startswith("data:"))  # it is running

    def finish(self) -> None:
        for _ in self._lines:
            pass
        self._cm.__exit__(None, None, None)


def test_load_and_unload_by_hand(http: httpx.Client) -> None:
    loaded = http.post("/admin/models/second/load")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["state"] == "loaded" and loaded.json()["in_use"] == 0
    assert loaded.json()["expires_at"] > time.time()
    assert _ps(http) == ["second"]
    assert http.post("/admin/models/first/load").json()["state"] == "loaded"
    assert _ps(http) == ["first"]  # the idle one made room
    assert _states(http) == {"first": "loaded", "second": "unloaded"}
    unloaded = http.post("/admin/models/first/unload")
    assert unloaded.status_code == 200 and unloaded.json()["state"] == "unloaded"
    assert _ps(http) == []
    missing = http.post("/admin/models/nope/load")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_unloading_a_model_in_use_waits_for_its_request(http: httpx.Client) -> None:
    stream = Streaming(http, "first")
    pending = http.post("/admin/models/first/unload")
    assert pending.status_code == 202
    assert pending.json()["state"] == "unloading" and pending.json()["in_use"] == 1
    assert _ps(http) == ["first"]  # never under its request
    stream.finish()
    assert _ps(http) == []


def test_a_model_that_finds_no_place_waits_then_is_served(http: httpx.Client) -> None:
    stream = Streaming(http, "first")
    answers: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: answers.append(_chat(http, "second")))
    waiting.start()
    time.sleep(0.5)
    assert answers == [] and _ps(http) == ["first"]
    stream.finish()
    waiting.join(timeout=30)
    assert answers[0].status_code == 200 and answers[0].json()["model"] == "second"
    assert _ps(http) == ["second"]


def test_waiting_past_the_queue_timeout_is_a_503(server: LiveServer, http: httpx.Client) -> None:
    registry = server.state.registry
    registry.queue_timeout = 0.3
    try:
        http.post("/admin/models/first/load")
        stream = Streaming(http, "first")
        openai_shape = _chat(http, "second")
        ollama_shape = _chat(http, "second", "/api/chat")
        stream.finish()
    finally:
        registry.queue_timeout = 30
    assert openai_shape.status_code == 503 and openai_shape.headers["retry-after"]
    error = openai_shape.json()["error"]
    assert error["code"] == "server_overloaded" and "'second' waited 0.3s" in error["message"]
    assert ollama_shape.status_code == 503 and "waited" in ollama_shape.json()["error"]
    assert _chat(http, "second").status_code == 200  # a place is free again


def test_only_admin_keys_load_and_unload(server: LiveServer, http: httpx.Client) -> None:
    created = http.post("/admin/keys", json={"name": "app"}).json()
    as_app = {"Authorization": f"Bearer {created['key']}"}
    refused = httpx.post(f"{server.url}/admin/models/first/load", headers=as_app)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert httpx.post(f"{server.url}/admin/models/first/unload").status_code == 401
