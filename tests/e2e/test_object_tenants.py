"""Stored objects belong to the key that made them: with real clients, a second database
key gets the same 404 for another key's conversation, response, assistant and thread as
for an unknown id, sees none of them in lists, and cannot change, cancel or delete them;
an admin key reaches every object."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from hearth.store import Store
from tests.conftest import MODEL, LiveServer, make_settings
from tests.stored_keys import stored_key

pytestmark = [  # the Assistants API's
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]


@dataclass(frozen=True)
class Keys:
    alice: str
    bob: str
    admin: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_settings(tmp_path_factory.mktemp("tenants"))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> Keys:
    made = {name: stored_key(name, admin=name == "admin") for name in ("alice", "bob", "admin")}

    async def add() -> None:
        store = Store(server.state.settings.store_url)
        try:
            for _, row in made.values():
                await store.api_keys.add(row)
        finally:
            await store.close()

    asyncio.run(add())
    deadline = time.monotonic() + 5  # the gate remembers "no keys yet" for up to a second
    while httpx.get(server.url + "/v1/models", headers=_auth(made["alice"][0])).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return Keys(*(made[name][0] for name in ("alice", "bob", "admin")))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _client(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def _missing(call: Callable[[], Any]) -> str:
    with pytest.raises(openai.NotFoundError) as info:
        call()
    return str(info.value.body)


def _same_404(
    call_theirs: Callable[[], Any], call_unknown: Callable[[], Any], ids: tuple[str, str]
) -> None:
    theirs, unknown = _missing(call_theirs), _missing(call_unknown)
    assert theirs.replace(ids[0], "ID") == unknown.replace(ids[1], "ID")


def test_objects_of_another_key_are_missing(server: LiveServer, keys: Keys) -> None:
    with (
        _client(server, keys.alice) as alice,
        _client(server, keys.bob) as bob,
        _client(server, keys.admin) as admin,
    ):
        conv = alice.conversations.create(metadata={"who": "alice"})
        resp = alice.responses.create(
            model=MODEL, input="Say hi.", max_output_tokens=4, conversation=conv.id
        )
        asst = alice.beta.assistants.create(model=MODEL, name="alice's")
        thread = alice.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

        fake = {"conv": "conv_" + "0" * 48, "resp": "resp_" + "0" * 48}
        _same_404(
            lambda: bob.conversations.retrieve(conv.id),
            lambda: bob.conversations.retrieve(fake["conv"]),
            (conv.id, fake["conv"]),
        )
        _same_404(
            lambda: bob.responses.retrieve(resp.id),
            lambda: bob.responses.retrieve(fake["resp"]),
            (resp.id, fake["resp"]),
        )
        for call in (
            lambda: bob.conversations.update(conv.id, metadata={"who": "bob"}),
            lambda: bob.conversations.items.list(conv.id),
            lambda: bob.conversations.delete(conv.id),
            lambda: bob.responses.input_items.list(resp.id),
            lambda: bob.responses.delete(resp.id),
            lambda: bob.responses.create(
                model=MODEL, input="more", max_output_tokens=2, previous_response_id=resp.id
            ),
            lambda: bob.responses.create(
                model=MODEL, input="more", max_output_tokens=2, conversation=conv.id
            ),
            lambda: bob.beta.assistants.retrieve(asst.id),
            lambda: bob.beta.assistants.update(asst.id, name="bob's"),
            lambda: bob.beta.assistants.delete(asst.id),
            lambda: bob.beta.threads.retrieve(thread.id),
            lambda: bob.beta.threads.messages.list(thread.id),
            lambda: bob.beta.threads.messages.create(thread.id, role="user", content="x"),
            lambda: bob.beta.threads.runs.create(thread.id, assistant_id=asst.id),
            lambda: bob.beta.threads.delete(thread.id),
        ):
            _missing(call)
        # Bob's own run cannot use Alice's assistant either.
        own = bob.beta.threads.create()
        _missing(lambda: bob.beta.threads.runs.create(own.id, assistant_id=asst.id))

        listed = httpx.get(server.url + "/v1/conversations", headers=_auth(keys.bob)).json()
        assert listed["data"] == []
        mine = httpx.get(server.url + "/v1/conversations", headers=_auth(keys.alice)).json()
        assert [c["id"] for c in mine["data"]] == [conv.id]
        assert asst.id not in [a.id for a in bob.beta.assistants.list().data]
        # Nothing of Alice's changed; she and the admin reach all of it.
        assert alice.conversations.retrieve(conv.id).metadata == {"who": "alice"}
        assert alice.beta.assistants.retrieve(asst.id).name == "alice's"
        assert [m.role for m in alice.beta.threads.messages.list(thread.id).data] == ["user"]
        assert admin.responses.retrieve(resp.id).id == resp.id
        assert asst.id in [a.id for a in admin.beta.assistants.list().data]
        assert admin.beta.threads.retrieve(thread.id).id == thread.id
        # Alice's later turns still chain on her own objects.
        follow = alice.responses.create(
            model=MODEL, input="again", max_output_tokens=2, previous_response_id=resp.id
        )
        assert follow.previous_response_id == resp.id
        assert alice.beta.threads.delete(thread.id).deleted


def test_a_background_response_of_another_key(server: LiveServer, keys: Keys) -> None:
    with _client(server, keys.alice) as alice, _client(server, keys.bob) as bob:
        resp = alice.responses.create(
            model=MODEL, input="Count to fifty.", max_output_tokens=200, background=True
        )
        _missing(lambda: bob.responses.retrieve(resp.id))
        _missing(lambda: bob.responses.cancel(resp.id))
        _missing(lambda: bob.responses.delete(resp.id))
        # Still Alice's, untouched by Bob's tries.
        assert alice.responses.retrieve(resp.id).status in ("queued", "in_progress", "completed")
        assert alice.responses.cancel(resp.id).status in ("cancelled", "completed")
