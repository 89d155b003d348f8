"""engine/upstream/stream.py: a member's stream read to its end, and what that leaves."""

from __future__ import annotations

import asyncio
import json

from hearth.core.model_spec import ModelSpec, UpstreamMember
from hearth.engine.types import ChatMessage, Finished, GenerationRequest, TokenEvent
from hearth.engine.upstream.backend import UpstreamBackend


def _sse(payload: object) -> bytes:
    body = b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    body += b"\n\n"
    return b"%x\r\n" % len(body) + body + b"\r\n"


def _delta(delta: dict[str, str], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _sse({"object": "chat.completion.chunk", "choices": [choice]})


class KeepAliveMember:
    """An OpenAI-like member on 127.0.0.1 that keeps its connections open between
    streamed replies, as uvicorn, vLLM and llama-server do; it counts them. Every write
    is its own, as a server streaming tokens sends them: `[DONE]`, then the body's end."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
                length = head.partition("content-length:")[2].partition("\r\n")[0]
                await reader.readexactly(int(length or 0))
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                for part in (
                    _delta({"role": "assistant", "content": ""}),
                    _delta({"content": "Hi"}),
                    _delta({}, "stop"),
                    _sse(b"[DONE]"),
                    b"0\r\n\r\n",
                ):
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.002)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed it

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
            await writer.wait_closed()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def test_a_stream_read_to_its_end_leaves_its_connection_for_the_next_request() -> None:
    """Closed before the body's last chunk, a connection is dropped, and every request
    would open a new one: a cost on each request's first token."""

    async def run() -> tuple[list[list[object]], int]:
        member = KeepAliveMember()
        url = await member.start()
        spec = ModelSpec(name="m", backend="upstream", urls=(UpstreamMember(url=url),))
        backend = UpstreamBackend(spec)
        request = GenerationRequest(model="m", messages=(ChatMessage("user", "hi"),))
        replies = []
        try:
            for _ in range(3):
                generation = await backend.start(request)
                replies.append([event async for event in generation])
        finally:
            await backend.close()
            await member.stop()
        return replies, member.connections

    replies, connections = asyncio.run(run())
    for events in replies:
        assert [type(e) for e in events] == [TokenEvent, Finished]
        assert events[0].text == "Hi" and events[1].reason == "stop"
    assert connections == 1
