"""GenerationRequest → an OpenAI streaming request body, and its SSE chunks → engine events.

Tool calls come back from an upstream as structured `tool_calls` deltas; they are handed
on as the engine's own ToolCallDelta events, which every surface already renders (the
services' text parser hands on what it finds in the same type). Re-writing them into the
model's text form for the parser would need each model's call syntax, which only the
upstream knows, and would parse twice what the upstream has parsed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id
from hearth.engine.types import (
    ChatMessage,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    ReasoningDelta,
    TokenEvent,
    TokenLogprob,
    ToolCallDelta,
    TopLogprob,
)

_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "stop",
    "error": "error",
}


class Malformed(ValueError):
    """A chunk that is not the OpenAI streaming format."""


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


def _tools(request: GenerationRequest, body: dict[str, Any]) -> None:
    if not request.tools:
        return
    body["tools"] = [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in request.tools
    ]
    if request.tool_name is not None:
        body["tool_choice"] = {"type": "function", "function": {"name": request.tool_name}}
    else:
        body["tool_choice"] = request.tool_choice
    if not request.parallel_tool_calls:
        body["parallel_tool_calls"] = False


def _sampling(request: GenerationRequest, body: dict[str, Any]) -> None:
    s = request.sampling
    body.update(temperature=s.temperature, top_p=s.top_p)
    # Beyond OpenAI's own fields: sent only when set, as vLLM, llama-server and Hearth take
    # them and OpenAI's API itself would refuse them.
    extra = {"top_k": (s.top_k, 0), "min_p": (s.min_p, 0.0)}
    extra["repetition_penalty"] = (s.repetition_penalty, 1.0)
    extra["presence_penalty"] = (s.presence_penalty, 0.0)
    extra["frequency_penalty"] = (s.frequency_penalty, 0.0)
    body.update({k: v for k, (v, default) in extra.items() if v != default})
    if s.seed is not None:
        body["seed"] = s.seed
    if s.logit_bias:
        body["logit_bias"] = {str(k): v for k, v in s.logit_bias.items()}


def request_body(request: GenerationRequest, model: str) -> tuple[str, dict[str, Any]]:
    """(path under the member's /v1, JSON body) of the streaming request."""
    if request.template is not None:
        raise InvalidRequest("an upstream model uses its engine's chat template", param="template")
    body: dict[str, Any] = {"model": model, "stream": True}
    body["stream_options"] = {"include_usage": True}
    _sampling(request, body)
    if request.n != 1:
        body["n"] = request.n
    if request.stop:
        body["stop"] = list(request.stop)
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.grammar is not None:
        fmt = request.grammar.response_format
        if fmt is None:
            raise InvalidRequest("an upstream model takes a response format, not a grammar")
        body["response_format"] = fmt
    if request.messages is None:
        ids = list(request.prompt_ids or ())
        body["prompt"] = request.prompt if request.prompt is not None else ids
        if request.logprobs is not None:
            body["logprobs"] = request.logprobs
        return "/completions", body
    body["messages"] = [_message(m) for m in request.messages]
    if not request.add_generation_prompt:
        body["add_generation_prompt"] = False  # vLLM's and Hearth's continuation of a turn
    if request.logprobs is not None:
        body.update(logprobs=True, top_logprobs=request.logprobs)
    _tools(request, body)
    _thinking(request, body)
    return "/chat/completions", body


def _thinking(request: GenerationRequest, body: dict[str, Any]) -> None:
    """A reasoning model behind the pool thinks as its engine lets it be told: the effort
    by OpenAI's name, on and off through the template's `enable_thinking` (Qwen3 and its
    kin; vLLM and llama-server pass `chat_template_kwargs` to the template)."""
    if request.reasoning_effort is not None:
        body["reasoning_effort"] = request.reasoning_effort
    kwargs = dict(request.template_kwargs)
    if request.think is not None:
        kwargs.setdefault("enable_thinking", request.think)
    if kwargs:
        body["chat_template_kwargs"] = kwargs


def _bytes(entry: dict[str, Any]) -> bytes:
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return bytes(raw)
    return str(entry.get("token", "")).encode()


def _logprob(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else -math.inf


def _chat_logprobs(raw: Any) -> tuple[TokenLogprob, ...]:
    entries = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(
        TokenLogprob(
            str(e.get("token", "")),
            _bytes(e),
            _logprob(e.get("logprob")),
            tuple(
                TopLogprob(str(t.get("token", "")), _bytes(t), _logprob(t.get("logprob")))
                for t in e.get("top_logprobs") or ()
                if isinstance(t, dict)
            ),
        )
        for e in entries
        if isinstance(e, dict)
    )


def _text_logprobs(raw: Any) -> tuple[TokenLogprob, ...]:
    if not isinstance(raw, dict) or not isinstance(raw.get("tokens"), list):
        return ()
    lps = raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or []
    out = []
    for i, token in enumerate(raw["tokens"]):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        alts = tuple(TopLogprob(str(t), str(t).encode(), _logprob(lp)) for t, lp in top.items())
        lp = lps[i] if i < len(lps) else None
        out.append(TokenLogprob(str(token), str(token).encode(), _logprob(lp), alts))
    return tuple(out)


@dataclass
class ChoiceState:
    """What one choice has streamed so far."""

    chunks: int = 0  # output chunks, about one token each
    calls: dict[int, int] = field(default_factory=dict)  # upstream call index → ours
    reason: FinishReason | None = None
    stop: str | None = None


@dataclass
class ChunkReader:
    """Turns a stream's chunks into events, choice by choice, keeping what they end with."""

    n: int
    choices: dict[int, ChoiceState] = field(default_factory=dict)
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens, from the last chunk

    def state(self, index: int) -> ChoiceState:
        return self.choices.setdefault(index, ChoiceState())

    def read(self, chunk: Any) -> list[GenerationEvent]:
        if not isinstance(chunk, dict):
            raise Malformed("a chunk that is not a JSON object")
        if "error" in chunk:
            err = chunk["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise UpstreamStreamError(str(message or "the upstream engine failed"))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(prompt, int) and isinstance(completion, int):
                self.usage = (prompt, completion)
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise Malformed("a chunk without a list of choices")
        events: list[GenerationEvent] = []
        for choice in choices:
            events.extend(self._choice(choice))
        return events

    def _choice(self, choice: Any) -> list[GenerationEvent]:
        if not isinstance(choice, dict):
            raise Malformed("a choice that is not an object")
        index = choice.get("index", 0)
        if not isinstance(index, int) or not 0 <= index < self.n:
            raise Malformed(f"a choice index {index!r} out of range")
        state = self.state(index)
        events: list[GenerationEvent] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = delta.get("content")
            logprobs = _chat_logprobs(choice.get("logprobs"))
            # An engine that separates a reasoning model's thinking (vLLM's and
            # llama-server's reasoning parsers) sends it apart: it stays apart here.
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                state.chunks += 1
                events.append(ReasoningDelta(thought, index=index))
            events.extend(self._calls(state, index, delta.get("tool_calls")))
        else:
            text = choice.get("text")
            logprobs = _text_logprobs(choice.get("logprobs"))
        if text is not None and not isinstance(text, str):
            raise Malformed("a text that is not a string")
        if text or logprobs:
            state.chunks += 1
            events.insert(0, TokenEvent(text or "", index=index, logprobs=logprobs))
        reason = choice.get("finish_reason")
        if reason is not None:
            state.reason = _REASONS.get(str(reason), "stop")
            stop = choice.get("stop_reason")  # vLLM: the stop string that matched
            state.stop = stop if isinstance(stop, str) else None
        return events

    def _calls(self, state: ChoiceState, index: int, calls: Any) -> list[GenerationEvent]:
        if not isinstance(calls, list):
            return []
        out: list[GenerationEvent] = []
        for call in calls:
            if not isinstance(call, dict):
                raise Malformed("a tool call that is not an object")
            function = call.get("function") or {}
            position = call.get("index", len(state.calls))
            arguments = function.get("arguments") or ""
            if not isinstance(arguments, str):
                raise Malformed("tool call arguments that are not a string")
            if position not in state.calls:
                # The first piece of a call names it (once: some engines repeat the id).
                state.calls[position] = len(state.calls)
                out.append(
                    ToolCallDelta(
                        call=state.calls[position],
                        index=index,
                        id=call.get("id") or new_id("call_"),
                        name=str(function.get("name") or ""),
                        arguments=arguments,
                    )
                )
            elif arguments:
                piece = ToolCallDelta(call=state.calls[position], arguments=arguments, index=index)
                out.append(piece)
            state.chunks += 1
        return out


class UpstreamStreamError(Exception):
    """An error event in the upstream's stream: the engine gave up on the request."""
