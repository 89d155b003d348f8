"""Model lifecycle and management through the real `ollama` client: keep_alive, copy,
create, delete, pull, and derived models that survive a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(make_settings(tmp_path, ctx_size=2048, parallel=2)).start()
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=server.url) as c:
        yield c


def loaded(client: ollama.Client) -> list[str]:
    return [m.model or "" for m in client.ps().models]


def test_keep_alive_zero_unloads_and_the_next_request_reloads(
    server: LiveServer, client: ollama.Client
) -> None:
    assert loaded(client) == [MODEL]
    # an empty prompt with keep_alive 0 is how clients unload a model
    reply = client.generate(model=MODEL, prompt="", keep_alive=0)
    assert (reply.done and reply.done_reason == "unload") or reply.done_reason == "load"
    deadline = time.monotonic() + 5
    while loaded(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loaded(client) == []
    assert httpx.get(f"{server.url}/health").json()["models"][0]["state"] == "unloaded"
    text = client.generate(model=MODEL, prompt="Hi", options={"num_predict": 3})
    assert text.eval_count == 3
    assert loaded(client) == [MODEL]


def test_keep_alive_forever_and_default(client: ollama.Client) -> None:
    client.generate(model=MODEL, prompt="", keep_alive=-1)
    [entry] = client.ps().models
    assert entry.expires_at is not None and entry.expires_at.year == 9999
    client.generate(model=MODEL, prompt="", keep_alive="90s")
    [entry] = client.ps().models
    assert entry.expires_at is not None
    left = entry.expires_at.timestamp() - time.time()
    assert 60 < left <= 91


def test_copy_create_delete_and_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ctx_size=2048, parallel=2)
    first = LiveServer(settings).start()
    try:
        client = ollama.Client(host=first.url)
        client.copy(MODEL, "smol")
        client.create(
            model="terse",
            from_=MODEL,
            system="You answer in one word.",
            parameters={"num_predict": 4, "temperature": 0},
        )
        names = {m.model for m in client.list().models}
        assert {MODEL, "smol", "terse"} <= names
        shown = client.show("terse")
        assert "num_predict" in (shown.parameters or "")
        assert "You answer in one word." in (shown.modelfile or "")
        # the profile's options apply when the client sets none, and only then
        reply = client.chat(model="terse", messages=[{"role": "user", "content": "Hi"}])
        assert reply.eval_count == 4 or reply.done_reason == "stop"
        longer = client.chat(
            model="terse",
            messages=[{"role": "user", "content": "Hi"}],
            options={"num_predict": 6},
        )
        assert longer.eval_count == 6 or longer.done_reason == "stop"
        # the OpenAI surface sees derived models too, with the same profile
        with openai.OpenAI(base_url=f"{first.url}/v1", api_key="x", max_retries=0) as oa:
            assert "terse" in [m.id for m in oa.models.list()]
            r = oa.chat.completions.create(
                model="terse", messages=[{"role": "user", "content": "Hi"}]
            )
            assert r.usage is not None and r.usage.completion_tokens <= 4
        client.delete("smol")
        assert "smol" not in {m.model for m in client.list().models}
        with pytest.raises(ollama.ResponseError) as info:
            client.delete("smol")
        assert info.value.status_code == 404
    finally:
        client.close()
        first.stop()
    again = LiveServer(settings).start()  # same data dir: the catalog comes back
    try:
        with ollama.Client(host=again.url) as client:
            names = {m.model for m in client.list().models}
            assert "terse" in names and "smol" not in names
            assert client.show("terse").modelfile is not None
    finally:
        again.stop()


def test_system_prompt_of_a_derived_model_reaches_the_template(client: ollama.Client) -> None:
    system = "Remember the code word PELICAN-42 and say it when asked."
    client.create(model="keeper", from_=MODEL, system=system)
    plain = client.generate(model=MODEL, prompt="Hi", options={"num_predict": 1})
    derived = client.generate(model="keeper", prompt="Hi", options={"num_predict": 1})
    # the derived model's prompt carries the system text instead of the default one
    assert derived.prompt_eval_count != plain.prompt_eval_count


def test_bad_creates_and_copies(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.create(model="x", from_="nope")
    assert info.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as info:
        client.create(model="x", files={"a.gguf": "sha256:" + "0" * 64})
    assert info.value.status_code == 400 and "--model" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        client.create(model="x", from_=MODEL, template="{{ .Prompt }} {% if %}")
    assert info.value.status_code == 400 and "Jinja" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        client.copy("nope", "y")
    assert info.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as info:
        client.copy(MODEL, "bad name!")
    assert info.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as info:
        client.copy(MODEL, MODEL)  # a configured model cannot be replaced by an alias
    assert info.value.status_code == 409


def test_pull(client: ollama.Client) -> None:
    statuses = [p.status for p in client.pull(MODEL, stream=True)]
    assert statuses[-1] == "success" and len(statuses) > 1
    assert client.pull(MODEL).status == "success"
    with pytest.raises(ollama.ResponseError) as info:
        client.pull("llama3:8b")
    assert info.value.status_code == 404
    assert "GGUF" in info.value.error and "--model" in info.value.error
