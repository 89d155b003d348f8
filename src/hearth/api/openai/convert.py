"""OpenAI wire fields → the engine's request, and the engine's usage → OpenAI's."""

from __future__ import annotations

from typing import Any

from hearth.api.openai.schemas import ChatCompletionRequest, Message, SamplingFields
from hearth.core.errors import InvalidRequest
from hearth.engine.types import ChatMessage, GenerationRequest, SamplingParams, Usage

SYSTEM_FINGERPRINT = "fp_hearth"


def sampling(body: SamplingFields) -> SamplingParams:
    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return SamplingParams(
        temperature=pick(body.temperature, 1.0),
        top_p=pick(body.top_p, 1.0),
        top_k=pick(body.top_k, 0),
        min_p=pick(body.min_p, 0.0),
        seed=body.seed,
        presence_penalty=pick(body.presence_penalty, 0.0),
        frequency_penalty=pick(body.frequency_penalty, 0.0),
        repetition_penalty=pick(body.repetition_penalty, 1.0),
        logit_bias={int(k): v for k, v in (body.logit_bias or {}).items()},
    )


def _message(i: int, msg: Message) -> ChatMessage:
    role = {"developer": "system", "function": "tool"}.get(msg.role, msg.role)
    text = msg.text()
    if role in {"system", "user"} and text is None:
        raise InvalidRequest(
            f"Invalid value for 'messages[{i}].content': a {msg.role} message needs content.",
            param=f"messages[{i}].content",
        )
    return ChatMessage(
        role=role,
        content=text,
        name=msg.name,
        tool_calls=msg.tool_calls,
        tool_call_id=msg.tool_call_id,
    )


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    # Each of these changes what the reply means; ignoring one would mislead the client.
    if body.logprobs:
        raise InvalidRequest("'logprobs' is not supported yet by this server.", param="logprobs")
    if body.response_format is not None and body.response_format.type != "text":
        raise InvalidRequest(
            f"response_format '{body.response_format.type}' is not supported yet by this server.",
            param="response_format",
        )
    if body.tools and body.tool_choice != "none":
        raise InvalidRequest("'tools' are not supported yet by this server.", param="tools")


def chat_request(body: ChatCompletionRequest) -> GenerationRequest:
    _refuse_unsupported(body)
    max_tokens = body.max_completion_tokens or body.max_tokens
    return GenerationRequest(
        model=body.model,
        messages=tuple(_message(i, m) for i, m in enumerate(body.messages)),
        sampling=sampling(body),
        stop=body.stops(),
        max_tokens=max_tokens,
        n=body.n or 1,
    )


def usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
