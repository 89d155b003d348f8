"""The JSON frames of /v1/ws, in and out.

A chat frame carries the fields of a /v1/chat/completions body (the same validation, the
same conversion to the engine's request) plus its `id`, an optional `system` prompt and
an optional stored `conversation` to continue (then `messages` holds only the new ones).
One choice is streamed per request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import Field, ValidationError, model_validator

from hearth.api.errors import validation_error
from hearth.api.openai.convert import chat_request, explicit, usage
from hearth.api.openai.schemas import ChatCompletionRequest, Message
from hearth.core.errors import HearthError, InvalidRequest
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import ChatMessage, GenerationRequest
from hearth.services.chat_session import Reply
from hearth.services.profiles import with_profile

MAX_ID_CHARS = 128


class FrameError(InvalidRequest):
    """A frame that is not JSON, not an object, or of no known type."""

    code = "invalid_frame"


class ChatFrame(ChatCompletionRequest):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    system: str | None = None
    conversation: str | None = None
    messages: list[Message] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_input(self) -> ChatFrame:
        if not self.messages and self.conversation is None:
            raise ValueError("'messages' must hold at least one message")
        return self


def parse(text: str | bytes | None) -> dict[str, Any]:
    """A client frame as a JSON object."""
    if not isinstance(text, str):
        raise FrameError("Frames must be JSON text, not binary.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise FrameError("The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise FrameError("A frame must be a JSON object with a 'type'.")
    return frame


def kind(frame: dict[str, Any]) -> str:
    value = frame.get("type")
    if not isinstance(value, str):
        raise FrameError("A frame needs a 'type': chat, cancel, auth or ping.", param="type")
    return value


def frame_id(frame: dict[str, Any]) -> str | None:
    """The frame's id when it is usable as one (for addressing an error frame)."""
    rid = frame.get("id")
    return rid if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_CHARS else None


def required_id(frame: dict[str, Any]) -> str:
    rid = frame_id(frame)
    if rid is None:
        code = "missing_required_parameter" if "id" not in frame else "invalid_value"
        raise InvalidRequest(
            f"'id' must be a non-empty string of at most {MAX_ID_CHARS} characters.",
            param="id",
            code=code,
        )
    return rid


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def chat_frame(frame: dict[str, Any]) -> ChatFrame:
    try:
        return ChatFrame.model_validate(frame)
    except ValidationError as exc:
        raise validation_error(exc) from None


def generation_request(
    body: ChatFrame, registry: ModelRegistry, history: Sequence[ChatMessage] = ()
) -> GenerationRequest:
    """The engine's request for a chat frame, with the model's profile applied; `history`
    (a stored conversation's) comes before the frame's messages, after its `system`."""
    if body.n not in (None, 1):
        raise _unsupported("A WebSocket chat request streams one choice: 'n' must be 1.", "n")
    if body.logprobs:
        raise _unsupported("'logprobs' is not available over the WebSocket.", "logprobs")
    if body.tools and body.tool_choice != "none":
        raise _unsupported(
            "'tools' are not available over the WebSocket yet; use /v1/chat/completions.",
            "tools",
        )
    request = chat_request(body)
    system = () if body.system is None else (ChatMessage("system", body.system),)
    if system or history:
        request = replace(request, messages=(*system, *history, *(request.messages or ())))
    return with_profile(request, registry.profile(body.model), explicit(body))


def turn_messages(body: ChatFrame) -> list[dict[str, Any]]:
    """The frame's messages as `{role, content}`, what a stored conversation keeps of them."""
    return [{"role": m.role, "content": m.text()} for m in body.messages]


def delta(rid: str, text: str) -> dict[str, Any]:
    return {"type": "delta", "id": rid, "content": text}


def reasoning(rid: str, text: str) -> dict[str, Any]:
    """A piece of a reasoning model's thinking, apart from the reply's content (a frame of
    its own type: a client that knows only deltas shows just the answer)."""
    return {"type": "reasoning", "id": rid, "content": text}


def done(rid: str, reply: Reply) -> dict[str, Any]:
    used, timing = reply.usage, reply.timing
    frame: dict[str, Any] = {
        "type": "done",
        "id": rid,
        "finish_reason": reply.finish_reason,
        "usage": None if used is None else usage(used),
        "timings": None,
    }
    if timing is not None and used is not None:
        frame["timings"] = {
            "first_token_ms": _ms(timing.first_token_s),
            "generation_ms": _ms(timing.generation_s),
            "tokens_per_second": _round(timing.tokens_per_second(used.completion_tokens)),
        }
    if reply.reasoning:
        frame["reasoning_content"] = reply.reasoning
    return frame


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 2)


def unknown_type(kind: str) -> HearthError:
    return FrameError(
        f"Unknown frame type '{kind[:40]}': expected chat, cancel, auth or ping.",
        param="type",
    )
