"""ASGI middleware for request bodies: refuses those over the configured size with a 413,
and reads JSON API bodies as JSON whatever Content-Type the client sent (curl's -d sends
form encoding; OpenAI's and Ollama's servers accept the JSON anyway)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.api.errors import error_response
from hearth.core.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, scope: Scope) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than this server accepts ({self.max_bytes} bytes)."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await error_response(scope["path"], self._too_large(scope))(
                        scope, receive, send
                    )
                    return
        # Bodies without a (truthful) length are read here up to the limit, then replayed.
        chunks: list[bytes] = []
        size = 0
        more = True
        early: Message | None = None  # a disconnect that came while reading the body
        while more:
            message = await receive()
            if message["type"] != "http.request":
                early = message
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await error_response(scope["path"], self._too_large(scope))(scope, receive, send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            if early is not None:
                return early
            return await receive()

        await self.app(_as_json(scope), replay, send)


def _as_json(scope: Scope) -> Scope:
    if scope["method"] not in {"POST", "PUT", "PATCH", "DELETE"}:
        return scope
    headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-type"]
    original = dict(scope.get("headers", [])).get(b"content-type", b"")
    if original.startswith(b"multipart/"):
        return scope
    headers.append((b"content-type", b"application/json"))
    # In place, not a copy: the router records the route it picked on this scope, and the
    # metrics middleware outside reads it there (api/metrics.py).
    scope["headers"] = headers
    return scope
