"""The REPL's HTTP side: the models a server offers, and a streamed chat completion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


class ChatError(Exception):
    """One line for the terminal: what the server said, or why it could not be asked."""


def _message(reply: httpx.Response) -> str:
    try:
        error = reply.json().get("error")
    except ValueError:
        error = None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or f"HTTP {reply.status_code}")


class ChatClient:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # No read timeout: a reply may wait for a model to load or for a free slot.
        timeout = httpx.Timeout(10.0, read=None)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def answers(self) -> bool:
        """Whether a server answers at the URL at all."""
        try:
            self._http.get("/health", timeout=2.0)
        except httpx.TransportError:
            return False
        return True

    def models(self) -> list[str]:
        try:
            reply = self._http.get("/v1/models")
        except httpx.TransportError as exc:
            raise ChatError(f"cannot reach {self.url}: {exc}") from None
        if reply.status_code == 401:
            raise ChatError(f"{self.url} needs an API key: pass --api-key or set HEARTH_API_KEY")
        if reply.status_code != 200:
            raise ChatError(f"{self.url}/v1/models: {_message(reply)}")
        return [m["id"] for m in reply.json()["data"]]

    def stream(self, model: str, messages: list[dict[str, str]]) -> Iterator[str]:
        """The reply's text as it comes. Leaving the iteration early (Ctrl-C) closes the
        connection, which stops the generation on the server."""
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
        try:
            with self._http.stream("POST", "/v1/chat/completions", json=body) as reply:
                if reply.status_code != 200:
                    reply.read()
                    raise ChatError(_message(reply))
                for line in reply.iter_lines():
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    if "error" in chunk:
                        raise ChatError(_message_of(chunk))
                    for choice in chunk.get("choices", []):
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
        except httpx.TransportError as exc:
            raise ChatError(f"the connection to {self.url} failed: {exc}") from None


def _message_of(chunk: dict[str, Any]) -> str:
    error = chunk["error"]
    return str(error.get("message") if isinstance(error, dict) else error)
