"""Ollama wire fields → the engine's request; names, options and refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hearth.api.ollama.schemas import ChatRequest, GenerateRequest, Message, Options
from hearth.api.state import AppState
from hearth.chat.reasoning import ThinkingControl
from hearth.chat.structured import json_object_grammar, schema_grammar
from hearth.core.errors import InvalidRequest, ModelNotFound
from hearth.engine.types import ChatMessage, Grammar, SamplingParams, Tool, ToolCall

NO_IMAGES = "this model does not accept images"

# Ollama's own defaults (api.DefaultOptions): its clients expect them when they send none.
DEFAULTS = SamplingParams(
    temperature=0.8, top_p=0.9, top_k=40, min_p=0.0, repetition_penalty=1.1, repeat_last_n=64
)


def now_iso() -> str:
    """Ollama's `created_at`: RFC 3339 in UTC."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def resolve_model(state: AppState, name: str) -> str:
    """The served name a request means. Ollama names carry a tag; `x:latest` is `x`."""
    if not name:
        raise InvalidRequest("model is required", param="model")
    if name in state.registry:
        return name
    base, _, tag = name.rpartition(":")
    if tag == "latest" and base in state.registry:
        return base
    raise ModelNotFound(f"model {json.dumps(name)} not found, try pulling it first")


def sampling(options: Options | None, context_length: int) -> SamplingParams:
    o = options or Options()

    def pick(value: float | int | None, default: float | int) -> float | int:
        return default if value is None else value

    d = DEFAULTS
    last_n = pick(o.repeat_last_n, d.repeat_last_n)
    return SamplingParams(
        temperature=pick(o.temperature, d.temperature),
        top_p=pick(o.top_p, d.top_p),
        top_k=pick(o.top_k, d.top_k),  # type: ignore[arg-type]
        min_p=pick(o.min_p, d.min_p),
        # Ollama: a negative seed means a random one.
        seed=o.seed if o.seed is not None and o.seed >= 0 else None,
        presence_penalty=pick(o.presence_penalty, 0.0),
        frequency_penalty=pick(o.frequency_penalty, 0.0),
        repetition_penalty=pick(o.repeat_penalty, d.repetition_penalty),
        # Ollama: -1 looks back over the whole context (llama.cpp would read it as 0, off).
        repeat_last_n=context_length if last_n == -1 else last_n,  # type: ignore[arg-type]
    )


# Options → the engine's option names (what a derived model's profile stores).
_ENGINE_NAMES = {
    **{name: name for name in ("temperature", "top_p", "top_k", "min_p", "seed", "stop")},
    **{name: name for name in ("presence_penalty", "frequency_penalty", "repeat_last_n")},
    "repeat_penalty": "repetition_penalty",
    "num_predict": "max_tokens",
}


def ollama_name(engine_name: str) -> str:
    return next((k for k, v in _ENGINE_NAMES.items() if v == engine_name), engine_name)


def explicit(options: Options | None) -> set[str]:
    """The engine's names of the options this request set."""
    if options is None:
        return set()
    return {
        _ENGINE_NAMES[name]
        for name in options.model_fields_set
        if name in _ENGINE_NAMES and getattr(options, name) is not None
    }


def profile_options(options: Options | None, context_length: int) -> dict[str, Any]:
    """The options of `/api/create`'s `parameters`, as a profile keeps them."""
    if options is None:
        return {}
    chosen = sampling(options, context_length)
    out: dict[str, Any] = {}
    for name in explicit(options):
        if name == "max_tokens":
            out[name] = max_tokens(options)
        elif name == "stop":
            out[name] = list(stops(options))
        else:
            out[name] = getattr(chosen, name)
    return out


def max_tokens(options: Options | None) -> int | None:
    # Ollama: -1 (its default) and -2 run to the end of the context; so does 0 in its runner.
    n = options.num_predict if options is not None else None
    return n if n is not None and n > 0 else None


def stops(options: Options | None) -> tuple[str, ...]:
    stop = options.stop if options is not None else None
    if stop is None:
        return ()
    return tuple(s for s in ([stop] if isinstance(stop, str) else stop) if s)


def logprobs(body: ChatRequest | GenerateRequest) -> int | None:
    return (body.top_logprobs or 0) if body.logprobs else None


def format_grammar(body: ChatRequest | GenerateRequest) -> Grammar | None:
    """Ollama's `format`: "json" for any JSON object, or a JSON schema."""
    fmt = body.format
    if not fmt:
        return None
    if fmt == "json":
        return json_object_grammar()
    if isinstance(fmt, dict):
        return schema_grammar(fmt, param="format")
    raise InvalidRequest(f'format must be "json" or a JSON schema, not {fmt!r}', param="format")


def refuse_unsupported(body: ChatRequest | GenerateRequest) -> None:
    """Fields that change what the reply means; ignoring them would mislead the client."""
    if isinstance(body, ChatRequest):
        for message in body.messages or []:
            if message.images:
                raise InvalidRequest(NO_IMAGES, param="images")
        return
    if body.images:
        raise InvalidRequest(NO_IMAGES, param="images")
    if body.suffix:
        raise InvalidRequest(
            "suffix is not supported: this model cannot fill in the middle", param="suffix"
        )
    if body.template:
        raise InvalidRequest(
            "template is not supported: Hearth renders the model's own chat template",
            param="template",
        )
    if body.context:
        raise InvalidRequest(
            "context is not supported (it is deprecated in Ollama too); send the "
            "conversation to /api/chat instead",
            param="context",
        )
    if body.raw and body.system:
        raise InvalidRequest("raw mode does not support template, system, or context")


def thinking(body: ChatRequest | GenerateRequest) -> ThinkingControl:
    """Ollama's `think`: true or false, or a level (low, medium, high). A model that does
    not reason ignores it (Ollama refuses it; clients that always send it work here)."""
    think = body.think
    if think is None:
        return ThinkingControl()
    if isinstance(think, str) and think not in ("low", "medium", "high"):
        raise InvalidRequest(
            f"invalid think value: {think!r} (use true, false, low, medium or high)",
            param="think",
        )
    if isinstance(think, str):
        return ThinkingControl(think=True, effort=think)
    return ThinkingControl(think=bool(think))


def chat_message(position: int, message: Message) -> ChatMessage:
    # Ollama's calls carry no ids; templates that pair results with calls get stable ones.
    tool_calls = tuple(
        ToolCall(
            id=f"call_{position}_{i}",
            name=call.function.name,
            arguments=json.dumps(call.function.arguments, ensure_ascii=False),
        )
        for i, call in enumerate(message.tool_calls or ())
    )
    return ChatMessage(
        role=message.role,
        content=message.content or "",
        name=message.tool_name if message.role == "tool" else None,
        tool_calls=tool_calls,
        reasoning=message.thinking,
    )


def tools(body: ChatRequest | GenerateRequest) -> tuple[Tool, ...]:
    if not isinstance(body, ChatRequest):
        return ()
    f = [t.function for t in body.tools or ()]
    return tuple(Tool.function(t.name, t.description, t.parameters) for t in f)


def tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Ollama's calls: arguments as an object, not JSON text. A call cut short by
    num_predict (arguments not yet a whole object) is left out: Ollama's clients read
    arguments as an object, and `done_reason: "length"` says the reply was cut."""
    out: list[dict[str, Any]] = []
    for call in calls:
        arguments = _object(call.arguments)
        if isinstance(arguments, dict):
            out.append({"function": {"index": len(out), "name": call.name, "arguments": arguments}})
    return out


def _object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return None


def generate_messages(body: GenerateRequest) -> tuple[ChatMessage, ...]:
    messages = []
    if body.system:
        messages.append(ChatMessage(role="system", content=body.system))
    messages.append(ChatMessage(role="user", content=body.prompt or ""))
    return tuple(messages)
