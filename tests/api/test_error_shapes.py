"""Error shapes the engine can't be made to produce on demand, with a scripted backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hearth.engine.fake import FakeBackend
from tests.conftest import LiveServer, make_settings, registry_of


class Exploding(FakeBackend):
    async def start(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    registry = registry_of(
        FakeBackend("fails-midway", "one two three four five six", fail_after=3),
        Exploding("explodes"),
        FakeBackend("ok", "one two three"),
    )
    settings = make_settings(Path(tmp_path_factory.mktemp("fake")), max_request_bytes=4096)
    live = LiveServer(settings, registry).start()
    yield live
    live.stop()


def test_error_after_first_byte_is_an_event_then_done(server: LiveServer) -> None:
    body = {
        "model": "fails-midway",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert '"error"' in lines[-2]
    assert "scripted engine failure" in lines[-2]
    assert sum('"content":"' in line for line in lines) >= 3  # the text before the failure


def test_the_sdk_raises_on_a_stream_error(server: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="fails-midway", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="scripted engine failure"):
        for _ in stream:
            pass
    client.close()


def test_non_stream_engine_failure_is_a_500_in_openai_shape(server: LiveServer) -> None:
    body = {"model": "fails-midway", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{server.url}/v1/chat/completions", json=body)
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"


def test_a_bug_is_a_500_without_a_traceback(server: LiveServer) -> None:
    body = {"model": "explodes", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{server.url}/v1/chat/completions", json=body)
    assert r.status_code == 500
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert "secret internal detail" not in r.text
    assert "Traceback" not in r.text


def test_scripted_reply_shape(server: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="ok", messages=[{"role": "user", "content": "hi"}], stop=" three"
    )
    assert reply.choices[0].message.content == "one two"
    assert reply.choices[0].finish_reason == "stop"
    client.close()


def test_method_not_allowed_and_413_in_openai_shape(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/v1/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(f"{server.url}/v1/completions", json={"model": "ok", "prompt": "x" * 5000})
    assert r.status_code == 413
