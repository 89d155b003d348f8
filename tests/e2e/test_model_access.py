"""Per-key model access with real clients: the bundled model served under two names, a
database key limited to one of them. The other (and an alias of it) is missing for that
key exactly as an unknown name is, on every surface, body for body; a key without a models
list sees and uses both."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from hearth.store import Store
from tests.conftest import MODEL, LiveServer, make_settings
from tests.e2e.ws_client import open_socket, send, until_end
from tests.stored_keys import stored_key

OTHER = "other"
HIDDEN = [OTHER, "other-nick"]  # a second model, and an alias of it
UNKNOWN = "no-such-model"
HI = [{"role": "user", "content": "hi"}]


pytestmark = [  # the Assistants API's
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]


@dataclass(frozen=True)
class Keys:
    team: str  # limited to MODEL
    all: str  # no models list
    admin: str  # may change the models


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("access")
    settings = make_settings(data, models={MODEL: model_path, OTHER: model_path})
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> Keys:
    team, team_row = stored_key("team", models=[MODEL])
    everything, all_row = stored_key("all")
    admin, admin_row = stored_key("admin", admin=True)

    async def add() -> None:
        store = Store(server.state.settings.store_url)
        try:
            for row in (team_row, all_row, admin_row):
                await store.api_keys.add(row)
        finally:
            await store.close()

    asyncio.run(add())
    # The gate remembers "no keys yet" for up to a second.
    deadline = time.monotonic() + 5
    while _get(server, "/v1/models", team).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for alias, target in (("nick", MODEL), ("other-nick", OTHER)):
        r = _post(server, "/api/copy", admin, {"source": target, "destination": alias})
        assert r.status_code == 200, r.text
    return Keys(team, everything, admin)


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _get(server: LiveServer, path: str, key: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=_headers(key), timeout=60)


def _post(server: LiveServer, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, headers=_headers(key), json=body, timeout=120)


def _openai(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def _ollama(server: LiveServer, key: str) -> ollama.Client:
    return ollama.Client(host=server.url, headers=_headers(key))


def _same_as_unknown(hidden: bytes, unknown: bytes, name: str) -> None:
    """Byte for byte, but for the name the request gave."""
    assert hidden == unknown.replace(UNKNOWN.encode(), name.encode())


def test_each_key_lists_what_it_may_use(server: LiveServer, keys: Keys) -> None:
    with _openai(server, keys.team) as team, _openai(server, keys.all) as everything:
        assert [m.id for m in team.models.list()] == [MODEL, "nick"]
        assert [m.id for m in everything.models.list()] == [MODEL, OTHER, "nick", "other-nick"]
        assert team.models.retrieve("nick").id == "nick"
        # The key without a models list uses the other model too (and so loads it).
        reply = everything.chat.completions.create(model=OTHER, messages=HI, max_tokens=2)
        assert reply.model == OTHER and reply.choices[0].message.content
    with _ollama(server, keys.team) as team_o, _ollama(server, keys.all) as all_o:
        assert [m.model for m in team_o.list().models] == [MODEL, "nick"]
        assert {m.model for m in all_o.list().models} == {MODEL, OTHER, "nick", "other-nick"}
        assert OTHER in {m.model for m in all_o.ps().models}
        assert OTHER not in {m.model for m in team_o.ps().models}  # loaded, but not for it


def _openai_calls(client: openai.OpenAI, name: str) -> list[Callable[[], object]]:
    return [
        lambda: client.models.retrieve(name),
        lambda: client.chat.completions.create(model=name, messages=HI, max_tokens=1),
        lambda: client.chat.completions.create(
            model=name,
            messages=HI,
            max_tokens=1,
            stream=True,
        ),
        lambda: client.completions.create(model=name, prompt="hi", max_tokens=1),
        lambda: client.embeddings.create(model=name, input="hi"),
        lambda: client.responses.create(model=name, input="hi", max_output_tokens=16),
        lambda: client.beta.assistants.create(model=name),
    ]


def test_openai_answers_a_hidden_model_as_an_unknown_one(server: LiveServer, keys: Keys) -> None:
    with _openai(server, keys.team) as team:
        unknown = []
        for call in _openai_calls(team, UNKNOWN):
            with pytest.raises(openai.NotFoundError) as info:
                call()
            unknown.append(info.value)
        for name in HIDDEN:
            for call, expected in zip(_openai_calls(team, name), unknown, strict=True):
                with pytest.raises(openai.NotFoundError) as info:
                    call()
                assert info.value.code == "model_not_found"
                _same_as_unknown(info.value.response.content, expected.response.content, name)


def test_assistants_with_a_hidden_model(server: LiveServer, keys: Keys) -> None:
    with _openai(server, keys.team) as team, _openai(server, keys.all) as everything:
        theirs = everything.beta.assistants.create(model=OTHER)
        mine = team.beta.assistants.create(model=MODEL)
        thread = team.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.NotFoundError) as info:
            team.beta.assistants.update(mine.id, model=OTHER)
        assert info.value.message.endswith(f"The model '{OTHER}' does not exist")
        assert team.beta.assistants.retrieve(mine.id).model == MODEL
        # A run names no model of its own: the assistant's is the one it would use.
        with pytest.raises(openai.NotFoundError) as info:
            team.beta.threads.runs.create(thread.id, assistant_id=mine.id, model="other-nick")
        assert info.value.code == "model_not_found"
        # Another key's assistant is not the team's to run at all (store/tenants.py).
        with pytest.raises(openai.NotFoundError) as info:
            team.beta.threads.runs.create(thread.id, assistant_id=theirs.id)
        assert "No assistant found" in info.value.message


def test_responses_use_only_the_requested_model(server: LiveServer, keys: Keys) -> None:
    with _openai(server, keys.team) as team:
        earlier = team.responses.create(model=MODEL, input="hi", max_output_tokens=16)
        later = team.responses.create(
            model=MODEL, input="and again", previous_response_id=earlier.id, max_output_tokens=16
        )
        assert later.model == MODEL and later.output_text  # it ran, on MODEL
        with pytest.raises(openai.NotFoundError) as info:
            team.responses.create(
                model=OTHER, input="more", previous_response_id=earlier.id, max_output_tokens=16
            )
        assert info.value.code == "model_not_found"


def _ollama_requests(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/api/chat", {"model": name, "messages": HI}),
        ("POST", "/api/chat", {"model": name, "messages": HI, "stream": False}),
        ("POST", "/api/generate", {"model": name, "prompt": "hi"}),
        ("POST", "/api/generate", {"model": name}),  # a load
        ("POST", "/api/embed", {"model": name, "input": "hi"}),
        ("POST", "/api/embeddings", {"model": name, "prompt": "hi"}),
        ("POST", "/api/show", {"model": name}),
        ("POST", "/api/show", {"model": f"{name}:latest"}),
        ("POST", "/api/pull", {"model": name}),
        ("POST", "/api/copy", {"source": name, "destination": "mine"}),
        ("POST", "/api/create", {"model": "mine", "from": name, "system": "Hi."}),
        ("DELETE", "/api/delete", {"model": name}),
    ]


def test_ollama_answers_a_hidden_model_as_an_unknown_one(server: LiveServer, keys: Keys) -> None:
    def send_all(name: str) -> list[httpx.Response]:
        return [
            httpx.request(
                method, server.url + path, json=body, headers=_headers(keys.team), timeout=60
            )
            for method, path, body in _ollama_requests(name)
        ]

    unknown = send_all(UNKNOWN)
    assert {r.status_code for r in unknown} == {404}
    for name in HIDDEN:
        for hidden, expected in zip(send_all(name), unknown, strict=True):
            assert (hidden.status_code, hidden.headers["content-type"]) == (
                expected.status_code,
                expected.headers["content-type"],
            )
            _same_as_unknown(hidden.content, expected.content, name)
    with _ollama(server, keys.team) as team:
        with pytest.raises(ollama.ResponseError) as info:
            team.chat(model=OTHER, messages=HI)
        assert info.value.status_code == 404
        assert info.value.error == f"model {json.dumps(OTHER)} not found, try pulling it first"
        assert team.chat(model="nick", messages=HI, options={"num_predict": 2}).message.content


def test_a_limited_key_cannot_change_models(server: LiveServer, keys: Keys) -> None:
    """The names are shared: copy, create and delete are refused alike for whatever name
    the key sees, a hidden destination included (a 409 would confirm it)."""
    with _ollama(server, keys.team) as team:
        for change in (
            lambda: team.copy(MODEL, "mine"),
            lambda: team.copy(MODEL, OTHER),
            lambda: team.copy(MODEL, "other-nick"),
            lambda: team.create("mine", from_=MODEL, system="Hi."),
            lambda: team.delete("nick"),
        ):
            with pytest.raises(ollama.ResponseError) as info:
                change()
            assert info.value.status_code == 403
        assert [m.model for m in team.list().models] == [MODEL, "nick"]
    with _ollama(server, keys.all) as everything:
        assert {m.model for m in everything.list().models} == {MODEL, OTHER, "nick", "other-nick"}
        # Any key but an admin's: the names are every tenant's.
        with pytest.raises(ollama.ResponseError) as info:
            everything.copy(MODEL, "mine")
        assert info.value.status_code == 403


async def _ws_endings(server: LiveServer, key: str, names: list[str]) -> list[dict[str, Any]]:
    """Each chat's last frame (done or error), with the request's id left out."""
    async with open_socket(server, additional_headers=_headers(key)) as ws:
        endings = []
        for i, name in enumerate(names):
            rid = f"r{i}"
            await send(
                ws, {"type": "chat", "id": rid, "model": name, "messages": HI, "max_tokens": 1}
            )
            frame, _ = await until_end(ws, rid)
            endings.append({k: v for k, v in frame.items() if k != "id"})
        return endings


def test_websocket_answers_a_hidden_model_as_an_unknown_one(server: LiveServer, keys: Keys) -> None:
    unknown, *hidden, usable = asyncio.run(
        _ws_endings(server, keys.team, [UNKNOWN, *HIDDEN, "nick"])
    )
    assert unknown["type"] == "error" and unknown["code"] == "model_not_found"
    for name, frame in zip(HIDDEN, hidden, strict=True):
        assert json.dumps(frame) == json.dumps(unknown).replace(UNKNOWN, name)
    assert usable["type"] == "done"
