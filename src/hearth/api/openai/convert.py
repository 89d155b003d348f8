"""OpenAI wire fields → the engine's request, and the engine's usage → OpenAI's."""

from __future__ import annotations

from typing import Any

from hearth.api.openai.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    Message,
    NamedToolChoice,
    SamplingFields,
)
from hearth.chat.output_format import format_grammar
from hearth.chat.reasoning import effort_control
from hearth.chat.tools import ToolMode, check_tool_turns, resolve_tool_choice
from hearth.core.errors import InvalidRequest
from hearth.core.ids import unix_now
from hearth.engine.types import (
    ChatMessage,
    GenerationRequest,
    SamplingParams,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from hearth.services.logprobs import logprob_entries

SYSTEM_FINGERPRINT = "fp_hearth"


# Request fields → the engine's option names, for telling a derived model's profile which
# options the client set itself.
_ENGINE_NAMES = {
    **{name: name for name in ("temperature", "top_p", "top_k", "min_p", "seed", "stop")},
    **{name: name for name in ("presence_penalty", "frequency_penalty", "repetition_penalty")},
    "logit_bias": "logit_bias",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
}


def reply_meta(reply_id: str, model: str, **extra: str) -> dict[str, Any]:
    """The fields every chat or text completion body and chunk carries."""
    meta: dict[str, Any] = {"id": reply_id, **extra, "created": unix_now(), "model": model}
    return {**meta, "system_fingerprint": SYSTEM_FINGERPRINT}


def wants_usage(body: ChatCompletionRequest | CompletionRequest) -> bool:
    """A stream's last chunk carries the usage only when stream_options asks for it."""
    return bool(body.stream_options and body.stream_options.include_usage)


def explicit(body: SamplingFields) -> set[str]:
    return {
        _ENGINE_NAMES[name]
        for name in body.model_fields_set
        if name in _ENGINE_NAMES and getattr(body, name) is not None
    }


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
    calls = tuple(
        ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
        for c in msg.tool_calls or ()
    )
    return ChatMessage(
        role=role,
        content=text,
        name=msg.name,
        tool_calls=calls,
        tool_call_id=msg.tool_call_id,
        reasoning=msg.reasoning_content or msg.reasoning,
    )


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    # Each of these changes what the reply means; ignoring one would mislead the client.
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidRequest("'top_logprobs' needs 'logprobs' set to true.", param="top_logprobs")


def tools(body: ChatCompletionRequest) -> tuple[Tool, ...]:
    f = [t.function for t in body.tools or ()]
    return tuple(Tool.function(t.name, t.description, t.parameters) for t in f)


def tool_choice(body: ChatCompletionRequest) -> tuple[ToolMode, str | None]:
    """(mode, forced function name) of `tool_choice`, checked against `tools`."""
    choice = body.tool_choice
    return resolve_tool_choice(
        choice.model_dump() if isinstance(choice, NamedToolChoice) else choice,
        [t.function.name for t in body.tools or ()],
        lambda c: (c.get("function") or {}).get("name"),
        "{'type': 'function', 'function': {'name': ...}}",
    )


def chat_request(body: ChatCompletionRequest) -> GenerationRequest:
    _refuse_unsupported(body)
    max_tokens = body.max_completion_tokens or body.max_tokens
    messages = tuple(_message(i, m) for i, m in enumerate(body.messages))
    check_tool_turns(messages)
    mode, name = tool_choice(body)
    fmt = body.response_format
    control = effort_control(body.reasoning_effort)
    return GenerationRequest(
        think=control.think,
        reasoning_effort=control.effort,
        max_reasoning_tokens=body.max_reasoning_tokens,
        template_kwargs=dict(body.chat_template_kwargs or {}),
        model=body.model,
        messages=messages,
        tools=tools(body),
        tool_choice=mode,
        tool_name=name,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        sampling=sampling(body),
        stop=body.stops(),
        max_tokens=max_tokens,
        n=body.n or 1,
        logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        grammar=format_grammar(None if fmt is None else fmt.model_dump(), "response_format"),
    )


def usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def chat_logprobs(entries: list[TokenLogprob] | tuple[TokenLogprob, ...]) -> dict[str, Any]:
    return {"content": logprob_entries(entries), "refusal": None}


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


def tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def tool_call_delta(delta: ToolCallDelta) -> dict[str, Any]:
    """One streamed piece of a call: the first carries its id, type and name."""
    out: dict[str, Any] = {"index": delta.call}
    function: dict[str, Any] = {"arguments": delta.arguments}
    if delta.id is not None:
        out["id"] = delta.id
        out["type"] = "function"
        function["name"] = delta.name
    out["function"] = function
    return out
