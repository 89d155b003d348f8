"""Streaming bodies and waits that end the work the moment the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from starlette.types import Send

from hearth.api.streaming import (
    ClientGone,
    EventStream,
    ndjson_line,
    sse_data,
    sse_event,
    unless_disconnected,
)
from tests.api.asgi import DISCONNECT, Client, Message, body, http_scope


class Producer:
    """A body iterator over an engine that yields `ready` chunks, then waits for a next
    token that never comes; records how its wait ended."""

    def __init__(self, *ready: bytes) -> None:
        self.ready = ready
        self.started = False
        self.waiting = asyncio.Event()
        self.cancelled = False
        self.finished = False  # its cleanup ran

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        try:
            for chunk in self.ready:
                yield chunk
            self.waiting.set()
            try:
                await asyncio.Event().wait()  # the next token
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            yield b"never"
        finally:
            self.finished = True


class Closed:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def serve(stream: EventStream, client: Client, send: Send | None = None) -> None:
    await asyncio.wait_for(stream(http_scope(), client.receive, send or client.send), 5)


def test_framing() -> None:
    assert sse_data({"a": 1, "b": "é"}) == 'data: {"a":1,"b":"é"}\n\n'.encode()
    assert sse_data("[DONE]") == b"data: [DONE]\n\n"
    assert sse_event("response.created", {"a": 1}) == b'event: response.created\ndata: {"a":1}\n\n'
    assert sse_event("ping", "{}") == b"event: ping\ndata: {}\n\n"
    assert ndjson_line({"done": True}) == b'{"done":true}\n'


async def test_a_whole_stream_is_sent_and_then_closed() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    client, closed = Client(), Closed()
    await serve(EventStream(chunks(), on_close=closed), client)
    assert client.status == 200
    assert client.headers["content-type"].startswith("text/event-stream")
    assert client.headers["cache-control"] == "no-cache"
    assert client.headers["x-accel-buffering"] == "no"
    assert [(m.get("body"), m.get("more_body")) for m in client.sent[1:]] == [
        (b"a", True),
        (b"b", True),
        (b"", False),
    ]
    assert closed.calls == 1
    assert client.read_cancelled  # no read of the finished connection left waiting


async def test_a_disconnect_while_waiting_for_a_token_cancels_the_producer() -> None:
    producer, client, closed = Producer(b"first"), Client(), Closed()
    stream = EventStream(producer.chunks(), media_type="application/x-ndjson", on_close=closed)
    task = asyncio.create_task(serve(stream, client))
    await asyncio.wait_for(producer.waiting.wait(), 5)
    client.disconnect()
    await task
    assert producer.cancelled and producer.finished
    assert closed.calls == 1
    assert client.headers["content-type"] == "application/x-ndjson"
    assert [m.get("body") for m in client.sent[1:]] == [b"first"]  # no clean end: nobody's there


async def test_a_client_gone_before_the_first_chunk_still_runs_on_close() -> None:
    """A generator that never started runs no cleanup of its own: on_close must."""
    producer, closed = Producer(b"first"), Closed()
    client = Client(DISCONNECT)

    async def stuck(message: Message) -> None:  # the response start never gets out
        await asyncio.Event().wait()

    await serve(EventStream(producer.chunks(), on_close=closed), client, stuck)
    assert not producer.started
    assert closed.calls == 1


async def test_a_failed_write_ends_the_stream_quietly() -> None:
    producer, client, closed = Producer(b"a", b"b"), Client(), Closed()

    async def send(message: Message) -> None:
        if message.get("body"):
            raise OSError("connection reset")
        await client.send(message)

    chunks = producer.chunks()  # held here: no garbage collector closes it for the stream
    await serve(EventStream(chunks, on_close=closed), client, send)
    assert producer.finished and not producer.waiting.is_set()
    assert closed.calls == 1


def request(client: Client) -> Request:
    return Request(http_scope(), client.receive)


async def test_work_finished_first_gives_its_result_and_stops_watching() -> None:
    client = Client(body(b"{}"))  # not a disconnect: keeps watching

    async def work() -> str:
        await asyncio.sleep(0.01)
        return "reply"

    assert await unless_disconnected(request(client), work()) == "reply"
    await asyncio.sleep(0)
    assert client.reads == 2 and client.read_cancelled


async def test_the_works_own_error_comes_through_unchanged() -> None:
    async def work() -> str:
        raise ValueError("engine says no")

    with pytest.raises(ValueError, match="engine says no"):
        await unless_disconnected(request(Client()), work())


async def test_a_disconnect_cancels_the_work_and_raises_client_gone() -> None:
    client = Client()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # a slot that never frees
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    task = asyncio.create_task(unless_disconnected(request(client), work()))
    await asyncio.wait_for(started.wait(), 5)
    client.disconnect()
    with pytest.raises(ClientGone):
        await asyncio.wait_for(task, 5)
    assert cancelled.is_set()  # and it was over before unless_disconnected returned
