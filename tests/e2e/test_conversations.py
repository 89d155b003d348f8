"""The Conversations API, and responses that live in a conversation, with the real SDK."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(240)


def test_conversation_objects_and_items(stored_client: openai.OpenAI) -> None:
    client = stored_client
    conv = client.conversations.create(
        metadata={"title": "Bread"},
        items=[{"type": "message", "role": "user", "content": "I like rye."}],
    )
    assert conv.object == "conversation" and conv.id.startswith("conv_")
    assert client.conversations.retrieve(conv.id).metadata == {"title": "Bread"}
    renamed = client.conversations.update(conv.id, metadata={"title": "Rye bread"})
    assert renamed.metadata == {"title": "Rye bread"}

    added = client.conversations.items.create(
        conv.id,
        items=[
            {"role": "assistant", "content": "Rye is good."},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ],
    )
    assert [i.type for i in added.data] == ["message", "function_call_output"]
    listed = client.conversations.items.list(conv.id, order="asc")
    assert [i.type for i in listed.data] == ["message", "message", "function_call_output"]
    assert listed.data[1].role == "assistant" and listed.data[1].content[0].text == "Rye is good."
    one = client.conversations.items.retrieve(listed.data[0].id, conversation_id=conv.id)
    assert one.content[0].text == "I like rye."
    after_delete = client.conversations.items.delete(listed.data[0].id, conversation_id=conv.id)
    assert after_delete.id == conv.id and after_delete.object == "conversation"
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(listed.data[0].id, conversation_id=conv.id)

    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conv.id)


def test_a_response_in_a_conversation_appends_its_turn(stored_client: openai.OpenAI) -> None:
    client = stored_client
    conv = client.conversations.create(
        items=[
            {"role": "user", "content": "My dog is Rex."},
            {"role": "assistant", "content": "OK"},
        ]
    )
    r = client.responses.create(
        model=MODEL,
        input="What is my dog called?",
        conversation=conv.id,
        max_output_tokens=10,
        temperature=0,
    )
    assert r.conversation is not None and r.conversation.id == conv.id
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [(i.type, i.role) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert items[2].content[0].text == "What is my dog called?"
    assert items[3].content[0].text == r.output_text and items[3].id == r.output[0].id
    alone = client.responses.create(
        model=MODEL, input="What is my dog called?", max_output_tokens=10, temperature=0
    )
    assert r.usage and alone.usage and r.usage.input_tokens > alone.usage.input_tokens


def test_listing_conversations_pages_newest_first(stored_client: openai.OpenAI) -> None:
    client = stored_client
    made = [client.conversations.create(metadata={"title": f"c{i}"}).id for i in range(3)]
    with httpx.Client(base_url=str(client.base_url)) as http:
        _check_listing(http, made)


def _check_listing(http: httpx.Client, made: list[str]) -> None:
    page = http.get("conversations", params={"limit": 2}).json()
    assert page["object"] == "list" and [c["id"] for c in page["data"]] == made[::-1][:2]
    assert page["has_more"] and page["first_id"] == made[2] and page["last_id"] == made[1]
    rest = http.get("conversations", params={"limit": 1, "after": page["last_id"]}).json()
    assert [c["id"] for c in rest["data"]] == [made[0]]
    asc = http.get("conversations", params={"order": "asc", "after": made[0]}).json()
    assert [c["id"] for c in asc["data"]][:2] == made[1:]
    assert asc["data"][0]["metadata"] == {"title": "c1"}
    bad = http.get("conversations", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    unknown = http.get("conversations", params={"after": "conv_nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "after"


def test_concurrent_appends_over_http_lose_nothing(stored_client: openai.OpenAI) -> None:
    client = stored_client
    conv = client.conversations.create()

    def append(i: int) -> None:
        client.conversations.items.create(
            conv.id,
            items=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(append, range(20)))
    texts = [i.content[0].text for i in client.conversations.items.list(conv.id, limit=100).data]
    assert sorted(texts) == sorted([f"q{i}" for i in range(20)] + [f"a{i}" for i in range(20)])
    for i in range(20):  # each call's two items stay together (newest first here)
        assert texts.index(f"q{i}") == texts.index(f"a{i}") + 1


def test_unstored_responses_still_join_their_conversation(stored_client: openai.OpenAI) -> None:
    client = stored_client
    conv = client.conversations.create()
    r = client.responses.create(
        model=MODEL, input="Hi", conversation=conv.id, store=False, max_output_tokens=4
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.content[0].text for i in items] == ["Hi", r.output_text]


def test_a_conversation_deleted_while_a_response_runs(stored_client: openai.OpenAI) -> None:
    client = stored_client
    conv = client.conversations.create()
    job = client.responses.create(
        model=MODEL, input="Tell a story.", conversation=conv.id, background=True,
        max_output_tokens=30,
    )  # fmt: skip
    client.conversations.delete(conv.id)
    while (got := client.responses.retrieve(job.id)).status in {"queued", "in_progress"}:
        pass
    assert got.status in {"completed", "incomplete"} and got.output_text
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conv.id)
