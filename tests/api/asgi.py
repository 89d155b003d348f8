"""A client's side of one ASGI connection, scripted, for driving middleware and responses
without a server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

Message = dict[str, Any]

DISCONNECT: Message = {"type": "http.disconnect"}


def http_scope(path: str = "/v1/chat/completions", method: str = "POST", **headers: str) -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


class Client:
    """Sends `messages` in order; past them, waits until `disconnect()` (as a client that
    stays connected does). Records what the app sends back."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)
        self.reads = 0
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.read_cancelled = False  # a read that waited was cancelled

    def disconnect(self) -> None:
        self.gone.set()

    async def receive(self) -> Message:
        self.reads += 1
        if self.messages:
            return self.messages.pop(0)
        try:
            await self.gone.wait()
        except asyncio.CancelledError:
            self.read_cancelled = True
            raise
        return DISCONNECT

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.sent[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    def json(self) -> Any:
        return json.loads(self.body)
