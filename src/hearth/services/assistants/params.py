"""The Assistants API's requests as typed params (their types and ranges checked by
pydantic as they are parsed), and their tools, tool_choice, response_format,
truncation_strategy and message content: checked (naming the param that is wrong) and
turned into the engine's terms. Only function tools run here; the hosted tools are
refused, never dropped."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hearth.chat.output_format import format_grammar
from hearth.chat.tools import ToolMode, resolve_tool_choice
from hearth.chat.types import Grammar, Tool
from hearth.core.errors import InvalidRequest

_HOSTED = ("code_interpreter", "file_search")


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


Temperature = Annotated[float | None, Field(ge=0, le=2)]
TopP = Annotated[float | None, Field(ge=0, le=1)]


class AssistantParams(_Params):
    """An assistant as created, or modified: then only the fields sent
    (`model_fields_set`) change."""

    model: str | None = None
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(None, max_length=256_000)
    tools: list[Any] | None = None
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: Temperature = None
    top_p: TopP = None
    response_format: Any = None


class ModifyParams(_Params):
    """A thread, message or run modified: only the fields sent change."""

    metadata: dict[str, Any] | None = None
    tool_resources: dict[str, Any] | None = None


class MessageParams(_Params):
    role: str
    content: Any  # a string or text parts: see message_content
    attachments: list[Any] | None = None
    metadata: dict[str, Any] | None = None


class ThreadParams(ModifyParams):
    messages: list[MessageParams] | None = None


class RunParams(_Params):
    """A run; `model` … `response_format` override the assistant's own."""

    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    additional_messages: list[MessageParams] | None = None
    tools: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: Temperature = None
    top_p: TopP = None
    max_prompt_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    truncation_strategy: dict[str, Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None


class ThreadRunParams(RunParams):
    """A new thread and a run on it."""

    thread: ThreadParams | None = None
    tool_resources: dict[str, Any] | None = None


def check_tools(tools: list[Any] | None, param: str = "tools") -> list[dict[str, Any]]:
    """The tools as the API shows them back: `{type: "function", function: {...}}`."""
    if tools is None:
        return []
    shown: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        where = f"{param}[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in _HOSTED:
            raise InvalidRequest(
                f"The '{kind}' tool is not supported by this server; only 'function' tools are.",
                param=f"{where}.type",
            )
        if kind != "function":
            raise InvalidRequest(
                f"Invalid value for '{where}.type': only 'function' tools are supported.",
                param=f"{where}.type",
            )
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(
                f"'{where}.function.name' must be a string.", param=f"{where}.function.name"
            )
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidRequest(
                f"'{where}.function.parameters' must be a JSON schema object.",
                param=f"{where}.function.parameters",
            )
        if any(t["function"]["name"] == function["name"] for t in shown):
            raise InvalidRequest(
                f"Duplicate function name {function['name']!r} in '{param}'.",
                param=f"{where}.function.name",
            )
        shown.append({"type": "function", "function": {**function}})
    return shown


def engine_tools(tools: list[dict[str, Any]]) -> tuple[Tool, ...]:
    return tuple(
        Tool.function(f["name"], f.get("description"), f.get("parameters"))
        for f in (t["function"] for t in tools)
    )


def check_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> tuple[ToolMode, str | None]:
    """(mode, forced function name) of `tool_choice`, checked against the run's tools."""
    if isinstance(choice, dict) and choice.get("type") in _HOSTED:
        raise InvalidRequest(
            f"The '{choice['type']}' tool is not supported by this server.", param="tool_choice"
        )
    return resolve_tool_choice(
        choice,
        [t["function"]["name"] for t in tools],
        lambda c: (c.get("function") or {}).get("name"),
        "{'type': 'function', 'function': {'name': ...}}",
    )


def response_grammar(fmt: Any) -> Grammar | None:
    """`response_format` as a grammar: any JSON object, or JSON valid against a schema."""
    return format_grammar(fmt, "response_format", auto=True)


def check_truncation(strategy: dict[str, Any] | None) -> dict[str, Any]:
    if strategy is None:
        return {"type": "auto", "last_messages": None}
    kind = strategy.get("type")
    if kind == "auto":
        return {"type": "auto", "last_messages": None}
    if kind == "last_messages":
        count = strategy.get("last_messages")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidRequest(
                "'truncation_strategy.last_messages' must be an integer of at least 1.",
                param="truncation_strategy.last_messages",
            )
        return {"type": "last_messages", "last_messages": count}
    raise InvalidRequest(
        "Invalid value for 'truncation_strategy.type': use 'auto' or 'last_messages'.",
        param="truncation_strategy.type",
    )


def message_content(content: Any, param: str) -> list[dict[str, Any]]:
    """A message's content (a string or text parts) as the API's text blocks."""
    if isinstance(content, str):
        return [text_block(content)]
    if not isinstance(content, list) or not content:
        raise InvalidRequest(
            f"'{param}' must be a string or a non-empty list of content parts.", param=param
        )
    blocks = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("text") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(text, str):
            shown = json.dumps(kind)[:40]
            raise InvalidRequest(
                f"Invalid value for '{param}[{i}]': content parts of type {shown} are not "
                "supported; use text parts ({'type': 'text', 'text': ...}).",
                param=f"{param}[{i}]",
            )
        blocks.append(text_block(text))
    return blocks


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": text, "annotations": []}}


def check_attachments(attachments: list[Any] | None, param: str) -> None:
    # Attachments name uploaded files for the hosted tools, which this server does not run.
    if attachments:
        raise InvalidRequest(
            "Message attachments are not supported by this server (they feed the "
            "'code_interpreter' and 'file_search' tools).",
            param=param,
        )


def check_tool_resources(resources: dict[str, Any] | None) -> None:
    if resources:
        raise InvalidRequest(
            "'tool_resources' are not supported by this server (they feed the "
            "'code_interpreter' and 'file_search' tools).",
            param="tool_resources",
        )
