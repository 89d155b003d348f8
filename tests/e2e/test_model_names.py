"""A model name that looks like a path is an unknown model on every surface, never a
file lookup: not even the absolute path of the GGUF file the server itself serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import ollama
import openai
import pytest

from tests.conftest import LiveServer
from tests.e2e.ws_client import chat, next_frame, open_socket, send

PATH_LIKE = ["../../etc/passwd", "/abs/model.gguf", "C:\\x", "file:///etc/passwd"]


@pytest.fixture(scope="module")
def names(model_path: Path) -> list[str]:
    # The served file itself, by its absolute path and by a relative one.
    relative = Path("../" * len(Path.cwd().parts)) / str(model_path).lstrip("/")
    assert relative.resolve() == model_path.resolve()
    return [*PATH_LIKE, str(model_path), str(relative)]


def _not_found(err: openai.APIStatusError) -> None:
    assert err.status_code == 404
    assert err.code == "model_not_found", err.body
    assert "root:" not in err.message and "GGUF" not in err.message


@pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning")  # the Assistants API
def test_openai_surfaces(client: openai.OpenAI, names: list[str]) -> None:
    for name in names:
        for call in _openai_calls(client, name):
            with pytest.raises(openai.NotFoundError) as info:
                call()
            _not_found(info.value)


def _openai_calls(client: openai.OpenAI, name: str) -> list[Callable[[], object]]:
    hi = [{"role": "user", "content": "hi"}]
    return [
        lambda: client.chat.completions.create(model=name, messages=hi, max_tokens=1),
        lambda: client.completions.create(model=name, prompt="hi", max_tokens=1),
        lambda: client.embeddings.create(model=name, input="hi"),
        lambda: client.responses.create(model=name, input="hi", max_output_tokens=16),
        lambda: client.beta.assistants.create(model=name),
    ]


def test_model_retrieve_with_a_path_like_name(live_server: LiveServer, names: list[str]) -> None:
    for name in names:
        for shown in (quote(name, safe=""), quote(name, safe="/:")):
            r = httpx.get(f"{live_server.url}/v1/models/{shown}")
            assert r.status_code == 404, (name, r.text)
            assert r.json()["error"]["code"] in {"model_not_found", "unknown_url"}, r.text
            assert "root:" not in r.text
        r = httpx.post(f"{live_server.url}/api/show", json={"model": name})
        expected = {"error": f"model {json.dumps(name)} not found, try pulling it first"}
        assert (r.status_code, r.json()) == (404, expected)


def test_ollama_surfaces(ollama_client: ollama.Client, names: list[str]) -> None:
    for name in names:
        for call in _ollama_calls(ollama_client, name):
            with pytest.raises(ollama.ResponseError) as info:
                call()
            assert info.value.status_code == 404, (name, info.value.error)
            assert "not found" in info.value.error and "root:" not in info.value.error
        with pytest.raises(ollama.ResponseError) as info:
            ollama_client.pull(name)
        assert info.value.status_code == 404 and "hf.co/USER/REPO" in info.value.error
    assert "copied" not in {m.model for m in ollama_client.list().models}


def _ollama_calls(ollama_client: ollama.Client, name: str) -> list[Callable[[], object]]:
    hi = [{"role": "user", "content": "hi"}]
    return [
        lambda: ollama_client.chat(model=name, messages=hi, options={"num_predict": 1}),
        lambda: ollama_client.generate(model=name, prompt="hi", options={"num_predict": 1}),
        lambda: ollama_client.embed(model=name, input="hi"),
        lambda: ollama_client.show(name),
        lambda: ollama_client.delete(name),
        lambda: ollama_client.copy(name, "copied"),
        lambda: ollama_client.create(model="derived", from_=name),
    ]


async def test_the_socket(live_server: LiveServer, names: list[str]) -> None:
    async with open_socket(live_server) as ws:
        for i, name in enumerate(names):
            await send(ws, {**chat(str(i), "hi", max_tokens=1), "model": name})
            frame = await next_frame(ws, within=30)
            assert frame["type"] == "error" and frame["code"] == "model_not_found", frame
