"""A small client for /v1/ws on the real `websockets` package, shared by the socket tests."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import MODEL, LiveServer

NEVER_END = {"0": -100, "2": -100}  # SmolLM2's end tokens, banned: a reply as long as allowed


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/ws"


def open_socket(server: LiveServer, **kwargs: Any) -> Any:
    return connect(ws_url(server), open_timeout=10, close_timeout=5, **kwargs)


def chat(rid: str, content: str, **params: Any) -> dict[str, Any]:
    return {
        "type": "chat",
        "id": rid,
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        **params,
    }


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def next_frame(ws: ClientConnection, within: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(within):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def until_end(ws: ClientConnection, rid: str, seen: list[dict[str, Any]] | None = None):  # type: ignore[no-untyped-def]
    """Frames up to `rid`'s done or error frame, which is returned with the text streamed;
    every frame read (other ids' too) is appended to `seen`."""
    text = ""
    while True:
        frame = await next_frame(ws)
        if seen is not None:
            seen.append(frame)
        if frame.get("id") != rid:
            continue
        if frame["type"] == "delta":
            text += frame["content"]
        elif frame["type"] in {"done", "error"}:
            return frame, text


def running(server: LiveServer, client: httpx.Client | None = None) -> int:
    """Sequences running or waiting on the server's (first) model, from /health."""
    get = client.get if client is not None else httpx.get
    model = get(f"{server.url}/health", timeout=10).json()["models"][0]
    return int(model["running"]) + int(model["waiting"])


async def settles_to_idle(server: LiveServer, within: float) -> bool:
    # One client for all the polls: a new one per poll costs more CPU than the engine step.
    with httpx.Client() as client:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await asyncio.to_thread(running, server, client) == 0:
                return True
            await asyncio.sleep(0.02)
        return await asyncio.to_thread(running, server, client) == 0
