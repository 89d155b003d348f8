"""/v1/ws with the real `websockets` client, a real server and the real model: turns,
multiplexing, cancellation, and bad frames that leave the connection up."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import MODEL, LiveServer
from tests.e2e.ws_client import (
    NEVER_END,
    chat,
    next_frame,
    open_socket,
    running,
    send,
    settles_to_idle,
    until_end,
)

SYSTEM = "You are a helpful assistant. Answer briefly."


async def test_two_turns_on_one_connection(live_server: LiveServer) -> None:
    async with open_socket(live_server) as ws:
        first = [{"role": "user", "content": "My name is Zorblax. Please remember my name."}]
        params = {"system": SYSTEM, "temperature": 0, "max_tokens": 30}
        await send(ws, {**chat("t1", ""), "messages": first, **params})
        done1, reply1 = await until_end(ws, "t1")
        assert done1["type"] == "done" and reply1
        history = [
            *first,
            {"role": "assistant", "content": reply1},
            {"role": "user", "content": "What is my name?"},
        ]
        await send(ws, {**chat("t2", ""), "messages": history, **params})
        done2, reply2 = await until_end(ws, "t2")
        # The same question without the first turn, on the same connection.
        await send(ws, {**chat("t3", "What is my name?"), **params})
        done3, reply3 = await until_end(ws, "t3")
    u1, u2, u3 = done1["usage"], done2["usage"], done3["usage"]
    # The second turn carries the first: its prompt holds turn one's prompt and reply,
    # and the engine reused turn one's cached prefix instead of decoding it again.
    assert u2["prompt_tokens"] >= u1["prompt_tokens"] + u1["completion_tokens"]
    assert u2["prompt_tokens_details"]["cached_tokens"] >= u1["prompt_tokens"] - 1
    assert u3["prompt_tokens"] < u2["prompt_tokens"]
    assert reply2 != reply3  # the history changed the answer
    for done in (done1, done2):
        assert done["finish_reason"] in {"stop", "length"}
        assert done["usage"]["total_tokens"] == (
            done["usage"]["prompt_tokens"] + done["usage"]["completion_tokens"]
        )
        assert done["timings"]["generation_ms"] >= 0
        assert done["timings"]["first_token_ms"] > 0


async def test_system_prompt_and_sampling_parameters_apply(live_server: LiveServer) -> None:
    async with open_socket(live_server) as ws:
        base = chat("s1", "Hi", temperature=0, max_tokens=8)
        pirate = "You are a pirate. " * 5
        await send(
            ws, {**base, "messages": [{"role": "system", "content": pirate}, *base["messages"]]}
        )
        in_messages, in_messages_text = await until_end(ws, "s1")
        await send(ws, {**base, "id": "s2", "system": pirate})
        with_system, with_system_text = await until_end(ws, "s2")
        await send(ws, {**base, "id": "s3", "max_tokens": 3, "logit_bias": NEVER_END})
        short, short_text = await until_end(ws, "s3")
        await send(ws, {**base, "id": "s4", "stop": [" "], "max_tokens": 20})
        stopped, stopped_text = await until_end(ws, "s4")
    # `system` is the conversation's system message (the model's default one is replaced).
    assert with_system["usage"]["prompt_tokens"] == in_messages["usage"]["prompt_tokens"]
    assert with_system_text == in_messages_text
    assert short["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 3
    assert short_text
    assert short["timings"]["tokens_per_second"] > 0
    assert stopped["finish_reason"] == "stop" and " " not in stopped_text


async def test_two_requests_interleave_by_id(live_server: LiveServer) -> None:
    params = {"temperature": 0, "max_tokens": 24, "logit_bias": NEVER_END}
    async with open_socket(live_server) as ws:
        await send(ws, chat("a", "Tell me a story about a cat.", **params))
        await send(ws, chat("b", "Tell me a story about a ship.", **params))
        seen: list[dict] = []
        ends = {}
        while len(ends) < 2:
            frame = await next_frame(ws)
            seen.append(frame)
            if frame["type"] in {"done", "error"}:
                ends[frame["id"]] = frame
    assert {f["finish_reason"] for f in ends.values()} == {"length"}
    order = [f["id"] for f in seen if f["type"] == "delta"]
    assert set(order) == {"a", "b"}
    # Both streamed at once: each one's deltas arrive while the other's are still coming.
    assert order.index("b") < len(order) - 1 - order[::-1].index("a")
    assert order.index("a") < len(order) - 1 - order[::-1].index("b")
    for rid in ("a", "b"):
        text = "".join(f["content"] for f in seen if f["type"] == "delta" and f["id"] == rid)
        assert text and ends[rid]["usage"]["completion_tokens"] == 24


async def test_duplicate_id_in_flight_is_refused(live_server: LiveServer) -> None:
    async with open_socket(live_server) as ws:
        await send(ws, chat("same", "Count to ten.", max_tokens=20, logit_bias=NEVER_END))
        await send(ws, chat("same", "Count to five.", max_tokens=5))
        err, _ = await until_end(ws, "same")
        assert err["type"] == "error" and err["code"] == "duplicate_id" and err["id"] == "same"
        assert err["param"] == "id" and "already in flight" in err["message"]
        # The first request is untouched by the refused one.
        done, _ = await until_end(ws, "same")
        assert done["type"] == "done" and done["usage"]["completion_tokens"] == 20
        # Once it is over, the id may be used again.
        await send(ws, chat("same", "Hi", max_tokens=3))
        again, _ = await until_end(ws, "same")
        assert again["type"] == "done"


async def test_cancel_frees_the_slot(live_server: LiveServer) -> None:
    async with open_socket(live_server) as ws:
        await send(ws, chat("long", "Write a long essay.", max_tokens=1500, logit_bias=NEVER_END))
        frame = await next_frame(ws)
        assert frame["type"] == "delta" and frame["id"] == "long"
        assert await asyncio.to_thread(running, live_server) == 1
        await send(ws, {"type": "cancel", "id": "long"})
        done, _ = await until_end(ws, "long")
        assert done == {
            "type": "done",
            "id": "long",
            "finish_reason": "cancelled",
            "usage": None,
            "timings": None,
        }
        assert await settles_to_idle(live_server, within=1.0)
        # The connection and the server go on: a new request completes.
        await send(ws, chat("next", "Hi", max_tokens=4))
        after, text = await until_end(ws, "next")
        assert after["type"] == "done" and text
        # Cancelling what is not in flight is an error frame, not a closed socket.
        await send(ws, {"type": "cancel", "id": "long"})
        err = await next_frame(ws)
        assert err["type"] == "error" and err["code"] == "not_found" and err["id"] == "long"


async def test_closing_the_socket_cancels_its_generations(live_server: LiveServer) -> None:
    async with open_socket(live_server) as ws:
        for rid in ("x", "y"):
            await send(ws, chat(rid, "Write a long essay.", max_tokens=1500, logit_bias=NEVER_END))
        await next_frame(ws)
        assert await asyncio.to_thread(running, live_server) == 2
    assert await settles_to_idle(live_server, within=1.0)


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        ("this is not json", "invalid_frame", None),
        ("[1, 2]", "invalid_frame", None),
        ('{"id": "q"}', "invalid_frame", "type"),
        ('{"type": "shout", "id": "q"}', "invalid_frame", "type"),
        ('{"type": "chat", "model": "m", "messages": []}', "missing_required_parameter", "id"),
        ('{"type": "chat", "id": 7, "model": "m", "messages": []}', "invalid_value", "id"),
        ('{"type": "chat", "id": "q", "model": "' + MODEL + '"}', "invalid_value", None),
        (
            '{"type": "chat", "id": "q", "model": "' + MODEL + '", "messages": [{"role": "x"}]}',
            "invalid_value",
            "messages[0].role",
        ),
        (
            '{"type": "chat", "id": "q", "model": "'
            + MODEL
            + '", "temperature": 9, "messages": [{"role": "user", "content": "hi"}]}',
            "invalid_value",
            "temperature",
        ),
        (
            '{"type": "chat", "id": "q", "model": "nope", '
            '"messages": [{"role": "user", "content": "hi"}]}',
            "model_not_found",
            "model",
        ),
        (
            '{"type": "chat", "id": "q", "model": "' + MODEL + '", "n": 2, '
            '"messages": [{"role": "user", "content": "hi"}]}',
            "unsupported_parameter",
            "n",
        ),
        (
            '{"type": "chat", "id": "q", "model": "' + MODEL + '", "conversation": "conv_1", '
            '"messages": [{"role": "user", "content": "hi"}]}',
            "not_found",
            "conversation",
        ),
        (
            '{"type": "chat", "id": "q", "model": "' + MODEL + '", "tools": [{"type": '
            '"function", "function": {"name": "f"}}], "messages": [{"role": "user", '
            '"content": "hi"}]}',
            "unsupported_parameter",
            "tools",
        ),
        ('{"type": "cancel"}', "missing_required_parameter", "id"),
    ],
)
async def test_bad_frame_gets_an_error_frame_and_the_connection_stays(
    live_server: LiveServer, frame: str, code: str, param: str | None
) -> None:
    async with open_socket(live_server) as ws:
        await ws.send(frame)
        err = await next_frame(ws)
        assert err["type"] == "error", err
        assert err["code"] == code and err.get("param") == param, err
        assert isinstance(err["message"], str) and len(err["message"]) > 10
        if '"id": "q"' in frame:
            assert err["id"] == "q"
        await send(ws, chat("ok", "Hi", max_tokens=3))
        done, text = await until_end(ws, "ok")
        assert done["type"] == "done" and text


async def test_binary_frame_and_ping(live_server: LiveServer) -> None:
    async with open_socket(live_server) as ws:
        await ws.send(b'{"type": "ping"}')
        err = await next_frame(ws)
        assert err["type"] == "error" and err["code"] == "invalid_frame"
        await send(ws, {"type": "ping"})
        assert await next_frame(ws) == {"type": "pong"}
        await send(ws, {"type": "auth", "key": "anything"})  # keys are off: accepted
        assert await next_frame(ws) == {"type": "authenticated"}


async def test_server_survives_a_client_that_vanishes(live_server: LiveServer) -> None:
    ws = await open_socket(live_server)
    await send(ws, chat("gone", "Write a long essay.", max_tokens=1500, logit_bias=NEVER_END))
    await next_frame(ws)
    ws.transport.abort()  # no close handshake at all
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert await settles_to_idle(live_server, within=2.0)


async def test_pages_from_other_sites_are_refused_without_keys(live_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with open_socket(live_server, origin="http://evil.example"):
            pass
    assert info.value.response.status_code == 403
    same_site = live_server.url  # the chat page's own origin
    async with open_socket(live_server, origin=same_site) as ws:
        await send(ws, {"type": "ping"})
        assert await next_frame(ws) == {"type": "pong"}
