"""A member's answer that is not a stream: a failure another member may not have
(_Retry), or the client's own error, which is the same wherever it goes."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from hearth.core.errors import ContextLengthExceeded, InvalidRequest
from hearth.engine.upstream.http import TransportError


class Retry(Exception):
    """This member failed the request before its first token; another may take it."""

    def __init__(self, reason: str, *, down: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.down = down
        self.retry_after = retry_after
        self.busy = retry_after is not None


def _error_message(raw: bytes) -> tuple[str, str | None, str | None]:
    """(message, param, code) of an error reply: OpenAI's shape, Ollama's, or text."""
    try:
        body = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        if text.lstrip().lower().startswith(("<!doctype", "<html")):
            return "an HTML page", None, None
        return (text[:200] or "no body"), None, None
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or json.dumps(err)[:200]
        param, code = err.get("param"), err.get("code")
        return str(message), param if isinstance(param, str) else None, str(code or "") or None
    return str(err)[:200], None, None


def _retry_after(response: aiohttp.ClientResponse) -> float:
    try:
        return max(1.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


async def check_status(response: aiohttp.ClientResponse, read_timeout: float) -> None:
    """Nothing for a 200; Retry for what another member may answer; else the client's
    own error (400, 413, 422: the request is wrong wherever it goes)."""
    status = response.status
    if status == 200:
        return
    try:
        async with asyncio.timeout(read_timeout):
            raw = await response.read()
    except (TimeoutError, TransportError):
        raise Retry(f"HTTP {status} with a body that never came") from None
    message, param, code = _error_message(raw)
    if status == 429:
        raise Retry(f"HTTP 429: {message}", retry_after=_retry_after(response))
    if status >= 500 or status in (401, 403, 404, 408, 409):
        raise Retry(f"HTTP {status}: {message}")
    if code == "context_length_exceeded":
        raise ContextLengthExceeded(message, param=param)
    raise InvalidRequest(message, param=param)
