"""Chat turns in a stored conversation (SQLite): the history they read, what they store
for each ending, and the errors of a bad conversation or message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hearth.core.errors import InvalidRequest, NotFound
from hearth.engine.types import ChatMessage, Usage
from hearth.services import chat_history
from hearth.services.chat_session import Reply
from hearth.services.conversations import ConversationsService
from hearth.store import Store
from hearth.store.pages import PageQuery


@pytest.fixture
async def conversations(tmp_path: Path) -> AsyncIterator[ConversationsService]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'hearth.db'}")
    await store.upgrade()
    yield ConversationsService(store)
    await store.close()


async def items(service: ConversationsService, conversation_id: str) -> list[dict]:  # type: ignore[type-arg]
    page = await service.items(conversation_id, PageQuery(limit=100, order="asc"))
    return list(page["data"])


async def test_a_turn_reads_the_history_and_joins_it(
    conversations: ConversationsService,
) -> None:
    conv = await conversations.create({}, [{"role": "user", "content": "I am Ada."}])
    history, turn = await chat_history.begin(
        conversations, conv["id"], [{"role": "user", "content": "Who am I?"}]
    )
    assert history == [ChatMessage("user", "I am Ada.")]
    usage = Usage(prompt_tokens=5, completion_tokens=2)
    await chat_history.record(conversations, turn, Reply("You are Ada.", "stop", usage))
    stored = await items(conversations, conv["id"])
    assert [(i["role"], i["content"][0]["text"], i["status"]) for i in stored] == [
        ("user", "I am Ada.", "completed"),
        ("user", "Who am I?", "completed"),
        ("assistant", "You are Ada.", "completed"),
    ]
    # The shapes the Conversations API stores for items it is given.
    assert stored[1]["content"] == [{"type": "input_text", "text": "Who am I?"}]
    assert stored[2]["id"].startswith("msg_") and stored[2]["type"] == "message"
    assert stored[2]["content"] == [
        {"type": "output_text", "text": "You are Ada.", "annotations": [], "logprobs": []}
    ]
    history, _ = await chat_history.begin(
        conversations, conv["id"], [{"role": "user", "content": "And?"}]
    )
    assert [m.role for m in history] == ["user", "user", "assistant"]


@pytest.mark.parametrize(
    ("reply", "stored"),
    [
        (Reply("Once upon", "cancelled"), [("user", "Go"), ("assistant", "Once upon")]),
        (Reply("Once upon a", "length"), [("user", "Go"), ("assistant", "Once upon a")]),
        (Reply("", "cancelled"), []),  # stopped before a word: nothing happened
    ],
)
async def test_an_unfinished_reply_is_stored_as_far_as_it_got(
    conversations: ConversationsService, reply: Reply, stored: list[tuple[str, str]]
) -> None:
    conv = await conversations.create({}, [])
    go = [{"role": "user", "content": "Go"}]
    _, turn = await chat_history.begin(conversations, conv["id"], go)
    await chat_history.record(conversations, turn, reply)
    got = await items(conversations, conv["id"])
    assert [(i["role"], i["content"][0]["text"]) for i in got] == stored
    if got:
        assert got[-1]["status"] == "incomplete"  # as the Responses API marks one


async def test_bad_conversations_and_messages(conversations: ConversationsService) -> None:
    with pytest.raises(NotFound) as missing:
        await chat_history.begin(conversations, "conv_nope", [{"role": "user", "content": "x"}])
    assert missing.value.param == "conversation" and "conv_nope" in missing.value.message
    conv = await conversations.create({}, [])
    with pytest.raises(InvalidRequest) as bad:
        await chat_history.begin(conversations, conv["id"], [{"role": "tool", "content": "42"}])
    assert bad.value.param == "messages[0].role"
    # A conversation deleted while its turn ran: the turn is dropped, nothing raises.
    hi = [{"role": "user", "content": "x"}]
    _, turn = await chat_history.begin(conversations, conv["id"], hi)
    await conversations.delete(conv["id"])
    await chat_history.record(conversations, turn, Reply("y", "stop"))
    with pytest.raises(NotFound):
        await conversations.get(conv["id"])
