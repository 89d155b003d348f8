"""/v1/ws on a server with API keys, a small frame limit and a short idle timeout: the key
by header, subprotocol or auth frame; 1008 before any token otherwise; 1009; idle close."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from hearth.engine.fake import FakeBackend
from tests.conftest import LiveServer, make_settings, registry_of
from tests.e2e.ws_client import chat, next_frame, open_socket, send, until_end

KEY = "sk-test-socket-key"
MAX_BYTES = 2048
IDLE = 2.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("strict"),
        api_keys=[KEY],
        max_request_bytes=MAX_BYTES,
        ws_idle_timeout=IDLE,
        parallel=2,
        ctx_size=1024,
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def closed_with(ws: Any) -> tuple[int, list[dict[str, Any]]]:
    """Reads until the server closes; the close code and every frame that came first."""
    frames = []
    with pytest.raises(ConnectionClosed) as info:
        while True:
            frames.append(await next_frame(ws, within=IDLE * 4))
    assert info.value.rcvd is not None
    return info.value.rcvd.code, frames


async def served(ws: Any) -> str:
    await send(ws, chat("r", "Hi", max_tokens=4))
    done, text = await until_end(ws, "r")
    assert done["type"] == "done" and text
    return text


async def test_key_in_the_authorization_header(strict: LiveServer) -> None:
    async with open_socket(strict, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        await served(ws)
        assert ws.subprotocol is None


async def test_key_as_a_subprotocol_is_echoed(strict: LiveServer) -> None:
    # From a page on another site too: with keys, the key decides.
    kwargs: dict[str, Any] = {"origin": "http://chat.example", "subprotocols": [f"bearer.{KEY}"]}
    async with open_socket(strict, **kwargs) as ws:
        assert ws.subprotocol == f"bearer.{KEY}"
        await served(ws)


async def test_key_in_an_auth_frame(strict: LiveServer) -> None:
    async with open_socket(strict) as ws:
        await send(ws, {"type": "auth", "key": KEY})
        assert await next_frame(ws) == {"type": "authenticated"}
        await served(ws)


@pytest.mark.parametrize(
    "how",
    ["header", "scheme", "subprotocol", "frame", "frame-not-string", "chat-first", "silence"],
)
async def test_anything_but_a_right_key_closes_with_1008(strict: LiveServer, how: str) -> None:
    kwargs: dict[str, Any] = {}
    if how == "header":
        kwargs["additional_headers"] = {"Authorization": "Bearer sk-wrong-key-123"}
    elif how == "scheme":
        kwargs["additional_headers"] = {"Authorization": f"Basic {KEY}"}
    elif how == "subprotocol":
        kwargs["subprotocols"] = ["bearer.sk-wrong-key-123"]
    started = time.monotonic()
    async with open_socket(strict, **kwargs) as ws:
        # The server may close before these are sent: that is what is being tested.
        with contextlib.suppress(ConnectionClosed):
            if how == "frame":
                await send(ws, {"type": "auth", "key": "sk-wrong-key-123"})
            elif how == "frame-not-string":
                await send(ws, {"type": "auth", "key": 12345678})
            if how != "silence":
                await send(ws, chat("r", "Hi", max_tokens=4))  # must never be answered
        code, frames = await closed_with(ws)
    assert code == 1008
    assert frames == []  # not a single token, not even an error frame
    if how == "silence":  # the auth frame's window is min(10 s, the idle timeout)
        assert IDLE - 0.5 < time.monotonic() - started < IDLE + 2


async def test_frame_over_the_limit_closes_with_1009(strict: LiveServer) -> None:
    async with open_socket(strict, subprotocols=[f"bearer.{KEY}"]) as ws:
        await ws.send(json.dumps(chat("big", "x" * MAX_BYTES)))
        code, frames = await closed_with(ws)
    assert code == 1009 and frames == []
    # Just under the limit is served.
    async with open_socket(strict, subprotocols=[f"bearer.{KEY}"]) as ws:
        frame = chat("fits", "Say hi. " + " " * (MAX_BYTES - 200), max_tokens=2)
        assert len(json.dumps(frame)) < MAX_BYTES
        await send(ws, frame)
        done, _ = await until_end(ws, "fits")
        assert done["type"] == "done"


async def test_idle_connection_is_pinged_then_closed(strict: LiveServer) -> None:
    async with open_socket(strict, subprotocols=[f"bearer.{KEY}"]) as ws:
        started = time.monotonic()
        assert await next_frame(ws, within=IDLE * 2) == {"type": "ping"}
        assert IDLE / 2 - 0.3 < time.monotonic() - started < IDLE
        code, frames = await closed_with(ws)
    assert code == 1001 and frames == []
    assert IDLE - 0.3 < time.monotonic() - started < IDLE + 1.5


async def test_answering_pings_keeps_the_connection(strict: LiveServer) -> None:
    async with open_socket(strict, subprotocols=[f"bearer.{KEY}"]) as ws:
        deadline = time.monotonic() + IDLE * 2.5
        while time.monotonic() < deadline:
            frame = await next_frame(ws, within=IDLE * 2)
            assert frame == {"type": "ping"}
            await send(ws, {"type": "pong"})
        await served(ws)


async def test_a_long_reply_is_not_idleness(tmp_path: Path) -> None:
    # A reply that surely outlasts the timeout, whatever the machine: the scripted
    # backend writes 300 words 10 ms apart (3 s) against a 1 s idle timeout.
    slow = FakeBackend("slow", " ".join(["word"] * 300), context_length=4096, token_delay=0.01)
    settings = make_settings(tmp_path, ws_idle_timeout=1.0)
    server = LiveServer(settings, registry_of(slow)).start()
    try:
        async with open_socket(server) as ws:
            await send(ws, {**chat("slow", "Go."), "model": "slow"})
            started = time.monotonic()
            frames: list[dict[str, Any]] = []
            done, _ = await until_end(ws, "slow", frames)
            assert done["type"] == "done" and done["usage"]["completion_tokens"] == 300
            assert time.monotonic() - started > 2.0
            assert {"type": "ping"} not in frames
            await send(ws, {"type": "ping"})  # and the connection is still up
            assert await next_frame(ws) == {"type": "pong"}
    finally:
        server.stop()
