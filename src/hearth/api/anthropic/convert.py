"""Anthropic Messages wire ⇄ the engine's request and results.

Turns become the same ChatMessages the OpenAI surface makes (tool_use blocks are calls,
tool_result blocks tool messages), so the prompt, the call grammar and the parsing are
the ones every surface shares.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hearth.api.anthropic.schemas import (
    Block,
    MessageCountRequest,
    MessageParam,
    MessageRequest,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from hearth.chat.tools import ToolMode, resolve_tool_choice
from hearth.core.errors import InvalidRequest
from hearth.engine.types import (
    ChatMessage,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    Tool,
    ToolCall,
    Usage,
)
from hearth.services.generation import ChoiceResult

# The engine's finish reasons → Anthropic's stop_reason ("stop" with a stop string that
# ended it is "stop_sequence").
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _refuse_media(block: Block, param: str) -> None:
    if isinstance(block, (TextBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock)):
        return
    raise InvalidRequest(
        f"{param}: content blocks of type '{block.type}' are not supported: this model has "
        "no vision or document input; send the content as text.",
        param=param,
    )


def _text(blocks: str | list[Block], param: str) -> str:
    if isinstance(blocks, str):
        return blocks
    parts = []
    for j, block in enumerate(blocks):
        _refuse_media(block, f"{param}[{j}]")
        if isinstance(block, TextBlock):
            parts.append(block.text)
    return "\n".join(parts)


def _turn(i: int, msg: MessageParam) -> list[ChatMessage]:
    """One wire message → the chat messages it stands for: a user turn's tool results
    become tool messages ahead of its text; an assistant turn's tool_use blocks its calls;
    thinking blocks of earlier turns are the turn's reasoning (the template decides)."""
    param = f"messages[{i}].content"
    if isinstance(msg.content, str):
        return [ChatMessage(role=msg.role, content=msg.content)]
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    results: list[ChatMessage] = []
    for j, block in enumerate(msg.content):
        where = f"{param}[{j}]"
        _refuse_media(block, where)
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            if block.thinking and msg.role == "assistant":
                thoughts.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            if msg.role != "assistant":
                raise InvalidRequest(f"{where}: tool_use belongs in assistant turns.", param=where)
            calls.append(
                ToolCall(block.id, block.name, json.dumps(block.input, ensure_ascii=False))
            )
        elif isinstance(block, ToolResultBlock):
            if msg.role != "user":
                raise InvalidRequest(f"{where}: tool_result belongs in user turns.", param=where)
            content = _text(block.content, f"{where}.content")
            if block.is_error:
                content = f"Error: {content}"
            results.append(
                ChatMessage(role="tool", content=content, tool_call_id=block.tool_use_id)
            )
    text = "\n".join(texts)
    if msg.role == "assistant":
        reasoning = "\n".join(thoughts) or None
        return [
            ChatMessage(
                role="assistant", content=text or None, tool_calls=tuple(calls), reasoning=reasoning
            )
        ]
    return [*results, *([ChatMessage(role="user", content=text)] if text or not results else [])]


def messages(body: MessageCountRequest) -> tuple[ChatMessage, ...]:
    out: list[ChatMessage] = []
    if body.system:
        system = body.system
        if not isinstance(system, str):
            system = "\n".join(b.text for b in system)
        out.append(ChatMessage(role="system", content=system))
    called: set[str] = set()
    for i, msg in enumerate(body.messages):
        for m in _turn(i, msg):
            called.update(c.id for c in m.tool_calls)
            if m.role == "tool" and m.tool_call_id not in called:
                raise InvalidRequest(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {m.tool_call_id}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in an earlier assistant message.",
                    param=f"messages[{i}].content",
                )
            out.append(m)
    return tuple(out)


def tool_choice(body: MessageCountRequest) -> tuple[ToolMode, str | None]:
    """Anthropic's choice in the shared form: "any" is "required", "tool" a named one."""
    choice = body.tool_choice
    wire: Any = None
    if choice is not None:
        wire = {"auto": "auto", "none": "none", "any": "required"}.get(choice.type)
        if choice.type == "tool":
            wire = {"type": "function", "name": choice.name}
    return resolve_tool_choice(
        wire,
        [t.name for t in body.tools or ()],
        lambda c: c.get("name"),
        "{'type': 'tool', 'name': ...}",
    )


def generation_request(body: MessageCountRequest) -> GenerationRequest:
    """The one internal request: for count_tokens (a MessageCountRequest) just what decides
    the prompt, for /v1/messages also sampling, stops and the token limit."""
    mode, name = tool_choice(body)
    choice = body.tool_choice
    thinking = body.thinking if body.thinking and body.thinking.type != "adaptive" else None
    request = GenerationRequest(
        model=body.model,
        messages=messages(body),
        tools=tuple(Tool.function(t.name, t.description, t.input_schema) for t in body.tools or ()),
        tool_choice=mode,
        tool_name=name,
        parallel_tool_calls=not (choice is not None and choice.disable_parallel_tool_use),
        # Extended thinking: enabled with a budget, disabled, or the model's default.
        think=None if thinking is None else thinking.type == "enabled",
        max_reasoning_tokens=thinking.budget_tokens if thinking is not None else None,
    )
    if not isinstance(body, MessageRequest):
        return request
    sampling = SamplingParams()
    return replace(
        request,
        sampling=replace(
            sampling,
            temperature=sampling.temperature if body.temperature is None else body.temperature,
            top_p=sampling.top_p if body.top_p is None else body.top_p,
            top_k=body.top_k or 0,
            seed=body.seed,
        ),
        stop=tuple(body.stop_sequences or ()),
        max_tokens=body.max_tokens,
    )


def explicit(body: MessageRequest) -> set[str]:
    """The options the client set itself, which a derived model's profile must not change."""
    names = {"temperature", "top_p", "top_k", "max_tokens", "seed"}
    given = {n for n in names if getattr(body, n) is not None}
    return given | ({"stop"} if body.stop_sequences is not None else set())


def stop_reason(reason: FinishReason | None, stop: str | None) -> str:
    if reason == "stop" and stop is not None:
        return "stop_sequence"
    return STOP_REASONS.get(reason or "stop", "end_turn")


def usage(u: Usage) -> dict[str, int]:
    """Anthropic counts cached prompt tokens apart: input_tokens are those decoded anew,
    so input + cache_read is the whole prompt (what count_tokens reports)."""
    return {
        "input_tokens": u.prompt_tokens - u.cached_tokens,
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
    }


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments) if call.arguments else {}
    except ValueError:  # a call cut off by max_tokens: what it had, as text
        arguments = {}
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def thinking_block(text: str) -> dict[str, Any]:
    # Hearth does not sign its thinking (nothing checks it when sent back: it is dropped).
    return {"type": "thinking", "thinking": text, "signature": ""}


def content(result: ChoiceResult) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if result.reasoning:
        blocks.append(thinking_block(result.reasoning))
    # the text around calls is usually a newline or two, which is not an answer
    if result.text.strip() or not result.tool_calls:
        blocks.append({"type": "text", "text": result.text})
    blocks.extend(tool_use_block(c) for c in result.tool_calls)
    return blocks


def message(message_id: str, model: str, result: ChoiceResult, total: Usage) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content(result),
        "stop_reason": stop_reason(result.finish_reason, result.stop),
        "stop_sequence": result.stop,
        "usage": usage(total),
    }
