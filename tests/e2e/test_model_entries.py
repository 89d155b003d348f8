"""A `[[models]]` entry's aliases, system prompt and default options reach every surface."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ollama
import openai
import pytest

from hearth.core.model_spec import ModelSpec
from tests.conftest import LiveServer, make_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[LiveServer]:
    entry = ModelSpec(
        name="tiny",
        path=model_path,
        aliases=("tiny-alias",),
        system="You are Hearth's test model.",
        options={"max_tokens": 3, "temperature": 0},
        parallel=2,
    )
    live = LiveServer(make_settings(tmp_path_factory.mktemp("entries"), model_entries=(entry,)))
    yield live.start()
    live.stop()


def test_an_alias_and_the_entry_options(server: LiveServer) -> None:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0) as client:
        _check_openai(client)


def _check_openai(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny", "tiny-alias"]
    messages = [{"role": "user", "content": "Write a long story about a lighthouse."}]
    reply = client.chat.completions.create(model="tiny-alias", messages=messages)
    # The entry's max_tokens applies when the request sets none; an explicit one wins.
    assert reply.usage.completion_tokens == 3 and reply.choices[0].finish_reason == "length"
    longer = client.chat.completions.create(model="tiny", messages=messages, max_tokens=6)
    assert longer.usage.completion_tokens == 6
    # The entry's system prompt is in the prompt: one more system turn than without it.
    assert reply.usage.prompt_tokens > len(messages[0]["content"].split()) + 8


def test_ollama_sees_the_entry(server: LiveServer) -> None:
    with ollama.Client(host=server.url) as client:
        _check_ollama(client)


def _check_ollama(client: ollama.Client) -> None:
    names = {m.model for m in client.list().models}
    assert {"tiny", "tiny-alias"} <= names
    shown = client.show("tiny-alias")
    assert 'SYSTEM """You are Hearth\'s test model."""' in (shown.modelfile or "")
    assert "num_predict" in (shown.parameters or "")
    reply = client.chat(model="tiny", messages=[{"role": "user", "content": "Tell a story."}])
    assert reply.eval_count == 3 and reply.done_reason == "length"
