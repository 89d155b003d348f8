"""/v1/ws continuing stored conversations (`"conversation": id`), with the real `websockets`
client, the real model, and the real `openai` SDK reading the conversation back."""

from __future__ import annotations

import asyncio

import httpx
import openai
from websockets.asyncio.client import ClientConnection

from tests.conftest import MODEL, LiveServer
from tests.e2e.ws_client import NEVER_END, chat, next_frame, open_socket, send, until_end

ESSAY = "Write a long essay."
PARAMS = {"system": "You are a helpful assistant. Answer briefly.", "temperature": 0}


def turns(client: openai.OpenAI, conversation_id: str) -> list[tuple[str, str, str]]:
    listed = client.conversations.items.list(conversation_id, order="asc", limit=100)
    return [(i.role, i.content[0].text, i.status) for i in listed.data]  # type: ignore[union-attr]


async def long_reply_begins(ws: ClientConnection, rid: str, conversation_id: str) -> str:
    """Start an essay in the conversation; its first 40 characters or more, once streamed."""
    frame = chat(rid, ESSAY, max_tokens=1500, logit_bias=NEVER_END)
    await send(ws, {**frame, "conversation": conversation_id})
    streamed = ""
    while len(streamed) < 40:
        delta = await next_frame(ws)
        assert delta["type"] == "delta", delta
        streamed += delta["content"]
    return streamed


async def test_two_turns_remember_through_the_stored_conversation(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    conv = await asyncio.to_thread(client.conversations.create, metadata={"title": "Names"})
    first = "My name is Zorblax. Please remember my name."
    second = "What is my name?"
    async with open_socket(live_server) as ws:
        # Each frame carries only its new message; the server holds the history.
        await send(ws, {**chat("t1", first), "conversation": conv.id, "max_tokens": 30, **PARAMS})
        done1, reply1 = await until_end(ws, "t1")
        await send(ws, {**chat("t2", second), "conversation": conv.id, "max_tokens": 30, **PARAMS})
        done2, reply2 = await until_end(ws, "t2")
    assert done1["type"] == done2["type"] == "done", (done1, done2)
    u1, u2 = done1["usage"], done2["usage"]
    # The second prompt holds the first turn (its prompt and reply) and reused its cache.
    assert u2["prompt_tokens"] >= u1["prompt_tokens"] + u1["completion_tokens"]
    assert u2["prompt_tokens_details"]["cached_tokens"] >= u1["prompt_tokens"] - 1
    status = {"stop": "completed", "length": "incomplete"}
    assert await asyncio.to_thread(turns, client, conv.id) == [
        ("user", first, "completed"),
        ("assistant", reply1, status[done1["finish_reason"]]),
        ("user", second, "completed"),
        ("assistant", reply2, status[done2["finish_reason"]]),
    ]
    # The Responses API continues the same conversation, and stores its turn in the same
    # shapes as the socket's.
    response = await asyncio.to_thread(
        client.responses.create,
        model=MODEL,
        input="Thanks.",
        conversation=conv.id,
        max_output_tokens=5,
        temperature=0,
    )
    assert response.usage is not None and response.usage.input_tokens > u2["prompt_tokens"]
    url = f"{live_server.url}/v1/conversations/{conv.id}/items?order=asc&limit=100"
    async with httpx.AsyncClient() as http:
        raw = (await http.get(url)).json()["data"]  # as stored, without the SDK's defaults
    assert len(raw) == 6
    socket_reply, api_reply = raw[3], raw[5]
    assert socket_reply.keys() == api_reply.keys()
    assert socket_reply["content"][0].keys() == api_reply["content"][0].keys()
    assert raw[2].keys() == raw[4].keys() and raw[2]["content"] == [
        {"type": "input_text", "text": second}
    ]


async def test_a_stopped_reply_is_stored_as_far_as_it_got(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    conv = await asyncio.to_thread(client.conversations.create)
    async with open_socket(live_server) as ws:
        streamed = await long_reply_begins(ws, "long", conv.id)
        await send(ws, {"type": "cancel", "id": "long"})
        done, rest = await until_end(ws, "long")
        assert done["type"] == "done" and done["finish_reason"] == "cancelled"
        stored = await asyncio.to_thread(turns, client, conv.id)
        assert [(role, state) for role, _, state in stored] == [
            ("user", "completed"),
            ("assistant", "incomplete"),
        ]
        assert stored[0][1] == ESSAY
        # What the client saw, and at most the one delta whose send the cancel cut off.
        assert stored[1][1].startswith(streamed + rest) and len(streamed) >= 40
        # The conversation goes on from the stopped reply.
        await send(ws, {**chat("next", "Thanks."), "conversation": conv.id, "max_tokens": 3})
        after, _ = await until_end(ws, "next")
        await send(ws, chat("fresh", "Thanks.", max_tokens=3))
        fresh, _ = await until_end(ws, "fresh")
    assert after["type"] == fresh["type"] == "done"
    # The essay so far (40 characters at least) and its question are in the next prompt.
    assert after["usage"]["prompt_tokens"] >= fresh["usage"]["prompt_tokens"] + 10
    assert len(await asyncio.to_thread(turns, client, conv.id)) == 4


async def test_a_reply_cut_off_by_closing_the_socket_is_kept(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    conv = await asyncio.to_thread(client.conversations.create)
    async with open_socket(live_server) as ws:
        streamed = await long_reply_begins(ws, "gone", conv.id)
    # The server notices the close, cancels the reply and stores it as far as it got.
    deadline = asyncio.get_running_loop().time() + 5
    while not (stored := await asyncio.to_thread(turns, client, conv.id)):
        assert asyncio.get_running_loop().time() < deadline, "the turn was not stored"
        await asyncio.sleep(0.05)
    assert [(role, state) for role, _, state in stored] == [
        ("user", "completed"),
        ("assistant", "incomplete"),
    ]
    assert stored[1][1].startswith(streamed)


async def test_unknown_or_deleted_conversation_is_an_error_frame(
    live_server: LiveServer, client: openai.OpenAI
) -> None:
    conv = await asyncio.to_thread(client.conversations.create)
    await asyncio.to_thread(client.conversations.delete, conv.id)
    async with open_socket(live_server) as ws:
        for rid, conversation in (("q1", "conv_nope"), ("q2", conv.id)):
            await send(ws, {**chat(rid, "Hi", max_tokens=3), "conversation": conversation})
            err = await next_frame(ws)
            assert err["type"] == "error" and err["id"] == rid, err
            assert err["code"] == "not_found" and err["param"] == "conversation"
            assert conversation in err["message"]
        # A message a conversation cannot hold is refused before anything is stored.
        live = await asyncio.to_thread(client.conversations.create)
        tool = {"role": "tool", "content": "42", "tool_call_id": "c1"}
        await send(ws, {**chat("q3", "Hi"), "conversation": live.id, "messages": [tool]})
        err = await next_frame(ws)
        assert err["type"] == "error" and err["param"] == "messages[0].role", err
        # The connection stays up.
        await send(ws, {**chat("ok", "Hi", max_tokens=3), "conversation": live.id})
        done, text = await until_end(ws, "ok")
    assert done["type"] == "done" and text
    assert [role for role, _, _ in await asyncio.to_thread(turns, client, live.id)] == [
        "user",
        "assistant",
    ]
