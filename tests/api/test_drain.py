"""The drain at shutdown: newcomers refused with a 503 in their surface's shape, running
requests let finish within the grace, then streams ended with their error event and
replies not yet begun answered with the 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

from hearth.api.drain import Drain, DrainGate
from hearth.api.streaming import EventStream, ollama_ndjson_ending, openai_sse_ending, sse_data
from tests.api.asgi import Client, body, http_scope


class Jobs:
    def __init__(self) -> None:
        self.stopped = 0

    async def stop(self) -> None:
        self.stopped += 1


def _gate(app: object, jobs: Jobs | None = None) -> tuple[Drain, DrainGate]:
    drain = Drain((jobs or Jobs()).stop)
    return drain, DrainGate(app, drain)  # type: ignore[arg-type]


async def _never(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("a request during the drain reached the app")


async def test_newcomers_get_503_in_their_shape() -> None:
    drain, gate = _gate(_never)
    await drain.run(grace=7)
    openai = Client(body(b"{}"))
    await gate(http_scope("/v1/chat/completions"), openai.receive, openai.send)
    assert openai.status == 503
    assert openai.headers["retry-after"] == "7"
    assert openai.headers["connection"] == "close"
    assert openai.json()["error"]["code"] == "server_shutting_down"
    ollama = Client(body(b"{}"))
    await gate(http_scope("/api/chat"), ollama.receive, ollama.send)
    assert ollama.status == 503 and isinstance(ollama.json()["error"], str)


async def test_websocket_handshake_during_drain_is_closed() -> None:
    drain, gate = _gate(_never)
    await drain.run(grace=0)
    client = Client({"type": "websocket.connect"})
    await gate({"type": "websocket", "path": "/v1/ws", "headers": []}, client.receive, client.send)
    assert client.sent == [{"type": "websocket.close", "code": 1012, "reason": ""}]


def _streaming(chunks: list[bytes], gap: float, ending: object) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def feed() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
                await asyncio.sleep(gap)

        await EventStream(feed(), ending=ending)(scope, receive, send)  # type: ignore[arg-type]

    return app


async def _run_with_drain(gate: DrainGate, drain: Drain, grace: float, path: str) -> Client:
    client = Client(body(b"{}"))
    request = asyncio.create_task(gate(http_scope(path), client.receive, client.send))
    await asyncio.sleep(0.05)  # running when the drain begins
    assert drain.running == 1
    await drain.run(grace)
    await asyncio.wait_for(request, 5)
    assert drain.running == 0
    return client


async def test_stream_that_ends_within_the_grace_is_whole() -> None:
    jobs = Jobs()
    chunks = [sse_data({"n": i}) for i in range(3)]
    drain, gate = _gate(_streaming(chunks, 0.05, openai_sse_ending), jobs)
    client = await _run_with_drain(gate, drain, 5, "/v1/chat/completions")
    assert client.body == b"".join(chunks)
    assert jobs.stopped == 0  # nothing ran past the grace


async def test_stream_past_the_grace_ends_with_its_error_event() -> None:
    jobs = Jobs()
    chunks = [sse_data({"n": i}) for i in range(100)]
    drain, gate = _gate(_streaming(chunks, 0.05, openai_sse_ending), jobs)
    client = await _run_with_drain(gate, drain, 0.2, "/v1/chat/completions")
    events = client.body.split(b"\n\n")
    assert 2 < len(events) < 50
    assert events[-3].startswith(b'data: {"error":{') and b"server_shutting_down" in events[-3]
    assert events[-2:] == [b"data: [DONE]", b""]
    assert jobs.stopped == 1
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_ollama_stream_past_the_grace_ends_with_an_error_line() -> None:
    chunks = [b'{"n":1}\n'] * 100
    drain, gate = _gate(_streaming(chunks, 0.05, ollama_ndjson_ending))
    client = await _run_with_drain(gate, drain, 0.2, "/api/chat")
    lines = client.body.splitlines()
    assert lines[-1].startswith(b'{"error":"') and lines[-2] == b'{"n":1}'


async def test_reply_not_begun_past_the_grace_gets_503() -> None:
    cancelled = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(60)  # a whole reply being generated
        except asyncio.CancelledError:
            cancelled.set()
            raise

    drain, gate = _gate(slow)
    client = await _run_with_drain(gate, drain, 0.1, "/v1/completions")
    assert cancelled.is_set()
    assert client.status == 503
    assert client.json()["error"]["code"] == "server_shutting_down"
    assert "shut down before this reply" in client.json()["error"]["message"]


async def test_cut_short_ends_the_grace_at_once() -> None:
    chunks = [sse_data({"n": i}) for i in range(1000)]
    drain, gate = _gate(_streaming(chunks, 0.05, openai_sse_ending))
    client = Client(body(b"{}"))
    request = asyncio.create_task(gate(http_scope(), client.receive, client.send))
    await asyncio.sleep(0.05)
    draining = asyncio.create_task(drain.run(grace=60))
    await asyncio.sleep(0.2)
    assert not draining.done()  # the grace holds until cut short
    drain.cut_short()
    await asyncio.wait_for(asyncio.gather(draining, request), 5)
    assert client.body.endswith(b'"}}\n\ndata: [DONE]\n\n')
    assert b"server_shutting_down" in client.body.split(b"\n\n")[-3]
