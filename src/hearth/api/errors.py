"""HearthError → each surface's error shape. The one place errors become HTTP responses
(and WebSocket error frames).

OpenAI clients expect `{"error": {"message", "type", "param", "code"}}`; Ollama clients
`{"error": "..."}`; Anthropic clients `{"type": "error", "error": {"type", "message"}}`
with Anthropic's statuses and a `request-id` header. Which one a path gets is decided by
its prefix. A stream that fails after its first byte ends with the same body as its last
event (OpenAI's SSE, Ollama's NDJSON line, Anthropic's `error` event).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hearth.core.errors import (
    EngineError,
    HearthError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Overloaded,
)
from hearth.core.ids import new_id
from hearth.services.failures import openai_error_object

log = logging.getLogger(__name__)

OLLAMA_PREFIX = "/api/"


def is_ollama_path(path: str) -> bool:
    return path.startswith(OLLAMA_PREFIX) or path == "/api"


ANTHROPIC_PREFIX = "/v1/messages"
# Anthropic's overloaded status: the SDK raises OverloadedError on it and retries.
ANTHROPIC_OVERLOADED = 529
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def is_anthropic_path(path: str) -> bool:
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def anthropic_status(err: HearthError) -> int:
    return ANTHROPIC_OVERLOADED if isinstance(err, Overloaded) else err.status


def anthropic_error_body(err: HearthError) -> dict[str, Any]:
    status = anthropic_status(err)
    if status == ANTHROPIC_OVERLOADED:
        kind = "overloaded_error"
    elif status >= 500:
        kind = "api_error"
    else:  # a 405 or 409 is a request this server will not take as sent
        kind = _ANTHROPIC_TYPES.get(status, "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def new_request_id() -> str:
    """Anthropic's `request-id` header, which its SDK puts on every error it raises."""
    return new_id("req_")


def openai_error_body(err: HearthError) -> dict[str, Any]:
    return {"error": openai_error_object(err)}


def ollama_error_body(err: HearthError) -> dict[str, Any]:
    return {"error": err.message}


def error_body(path: str, err: HearthError) -> dict[str, Any]:
    if is_ollama_path(path):
        return ollama_error_body(err)
    if is_anthropic_path(path):
        return anthropic_error_body(err)
    return openai_error_body(err)


def ws_error_frame(err: HearthError, rid: str | None) -> dict[str, Any]:
    """The /v1/ws error frame: `code` is always set (the error's type when it has none)."""
    frame: dict[str, Any] = {
        "type": "error",
        "id": rid,
        "code": err.code or err.type,
        "message": err.message,
    }
    if err.param is not None:
        frame["param"] = err.param
    if err.retry_after is not None:
        frame["retry_after"] = err.retry_after
    return frame


def error_response(path: str, err: HearthError, status: int | None = None) -> JSONResponse:
    """`status`, when given, overrides the error's own (a refusal of Starlette's)."""
    status = status or err.status
    headers = {}
    if isinstance(err, Overloaded) and is_ollama_path(path):
        status = 503  # Ollama's answer to a full queue; its clients retry on it
    elif is_anthropic_path(path):
        status = anthropic_status(err) if status == err.status else status
        headers["request-id"] = new_request_id()
    if err.retry_after is not None:
        # Rounded up: a client that waits exactly this long must not be refused again.
        headers["Retry-After"] = str(max(1, math.ceil(err.retry_after)))
    if err.status == 401 and not is_ollama_path(path):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error_body(path, err), status_code=status, headers=headers)


_JSON_INVALID = (
    "We could not parse the JSON body of your request. The API expects a JSON payload, "
    "but what was sent was not valid JSON."
)


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "null", "tuple"}


def _param(loc: tuple[Any, ...]) -> str | None:
    """("body", "messages", 0, "role") → "messages[0].role"; drops pydantic's union tags
    ("str", "list[str]", a model's class name), which name a type, not a field."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            isinstance(part, str)
            and part.isidentifier()
            and part not in _TYPE_TAGS
            and not part[:1].isupper()
        ):
            out += f".{part}" if out else part
        else:
            break
    return out or None


def validation_error(exc: RequestValidationError | ValidationError) -> InvalidRequest:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid" or any(e.get("type") == "json_invalid" for e in errors):
        return InvalidRequest(_JSON_INVALID, code="invalid_json")
    loc = tuple(first.get("loc", ()))
    param = _param(loc)
    if loc == ("body",) and first.get("type") in {"missing", "model_attributes_type", "dict_type"}:
        return InvalidRequest(
            "The request body must be a JSON object.", code="invalid_request_body"
        )
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    value = first.get("input")
    shown = json.dumps(value)[:80] if _jsonable(value) else repr(value)[:80]
    return InvalidRequest(
        f"Invalid value for '{param}': {msg}. (got {shown})", param=param, code="invalid_value"
    )


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HearthError)
    async def _hearth(request: Request, exc: HearthError) -> JSONResponse:
        if isinstance(exc, EngineError):
            log.error("engine error on %s: %s", request.url.path, exc.message)
        return error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request.url.path, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        if exc.status_code == 404:
            err: HearthError = NotFound(
                f"Unknown request URL: {request.method} {path}. Please check the URL for typos.",
                code="unknown_url",
            )
        elif exc.status_code == 405:
            err = MethodNotAllowed(f"Method {request.method} is not allowed for {path}.")
        else:  # a body Starlette could not parse, and the like: its status, our shape
            return error_response(path, InvalidRequest(str(exc.detail)), exc.status_code)
        return error_response(path, err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        err = HearthError("The server had an error while processing your request.")
        return error_response(request.url.path, err)
