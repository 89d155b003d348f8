"""OpenAI wire fields → the engine's request, and the engine's usage → OpenAI's."""

from __future__ import annotations

from typing import Any

from hearth.api.openai.schemas import ChatCompletionRequest, Message, SamplingFields
from hearth.core.errors import InvalidRequest
from hearth.engine.types import (
    ChatMessage,
    GenerationRequest,
    SamplingParams,
    TokenLogprob,
    Usage,
)

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
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidRequest("'top_logprobs' needs 'logprobs' set to true.", param="top_logprobs")
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
        logprobs=(body.top_logprobs or 0) if body.logprobs else None,
    )


def usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _bytes(raw: bytes) -> list[int]:
    return list(raw)


def chat_logprobs(entries: list[TokenLogprob] | tuple[TokenLogprob, ...]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": e.token,
                "logprob": e.logprob,
                "bytes": _bytes(e.bytes),
                "top_logprobs": [
                    {"token": t.token, "logprob": t.logprob, "bytes": _bytes(t.bytes)}
                    for t in e.top
                ],
            }
            for e in entries
        ],
        "refusal": None,
    }


def completion_logprobs(
    entries: list[TokenLogprob] | tuple[TokenLogprob, ...], offset: int
) -> dict[str, Any]:
    """The legacy completions shape; `offset` is where the first token starts in the text."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{t.token: t.logprob for t in e.top} for e in entries],
        "text_offset": offsets,
    }
