"""What /openapi.json says beyond what FastAPI derives from the routes: the statuses
api/errors.py renders, in each surface's error shape (without these FastAPI documents a 422
with its own body, which Hearth never sends: bad input is a 400 in the client's shape), and
the streams a route answers with when asked to stream.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class OpenAIErrorObject(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorObject


class OllamaError(BaseModel):
    error: str


class AnthropicErrorObject(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    type: Literal["error"]
    error: AnthropicErrorObject


_STATUSES: dict[int | str, str] = {
    # One range, not 400, 401, ... apiece: FastAPI adds its 422 unless a 4XX is there.
    "4XX": "400 an invalid request (a field, the JSON, a prompt longer than the context); "
    "401 no valid API key; 403 a key that may not do this; 404 no such model, object or URL; "
    "409 an object whose state does not allow it; 413 a body over the limit; "
    "429 over a rate limit or the engine's queue full (Retry-After)",
    500: "The engine failed on a valid request",
    503: "Shutting down, the database out of reach or no slot in time; the Ollama surface's "
    "answer to a full queue (Retry-After)",
}


def _responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": text} for status, text in _STATUSES.items()}


OPENAI_ERRORS = _responses(OpenAIError)
OLLAMA_ERRORS = _responses(OllamaError)
ANTHROPIC_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in _responses(AnthropicError).items() if k != 503},
    503: {"model": AnthropicError, "description": "Shutting down or the database out of reach"},
    529: {"model": AnthropicError, "description": "The engine's queue is full, or no slot in time"},
}


def _stream(media_type: str, item: dict[str, Any], text: str) -> dict[int | str, dict[str, Any]]:
    # `itemSchema` (OpenAPI 3.2, as FastAPI writes its own streams): one event or line each.
    return {200: {"content": {media_type: {"itemSchema": item}}, "description": text}}


_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}
SSE_STREAM = _stream(
    "text/event-stream", _SSE_EVENT, "JSON, or with `stream` set Server-Sent Events"
)
NDJSON_STREAM = _stream(
    "application/x-ndjson",
    {"type": "object"},
    "JSON with `stream` false; otherwise one JSON object a line",
)
