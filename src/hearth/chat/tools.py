"""Tools in the prompt and in the grammar.

A model whose chat template knows tools gets them through the template (`tools=`, and
assistant `tool_calls` with their arguments as objects, as Hugging Face templates expect).
Any other template gets the Hermes format that SmolLM2 and many others were trained on:
the tools described in the system prompt, calls written as

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

and results handed back in a user turn inside <tool_response> tags.

Calls are constrained by a grammar built from the tools' schemas: from the first token
when a call is required, and from the moment the model opens `<tool_call>` when it may
choose (a lazy grammar), so every call that comes back is a listed tool with arguments
valid against its schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

from hearth.chat.structured import GrammarBuilder
from hearth.chat.types import ChatMessage, Tool, ToolCall
from hearth.core.errors import InvalidRequest

ToolMode = Literal["auto", "none", "required"]

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
# Most calls one reply may make when parallel calls are allowed; a bound keeps a model
# that repeats itself from calling until max_tokens.
MAX_PARALLEL_CALLS = 8

_SYSTEM = """You are a function calling AI model. You may call one or more functions to \
assist with the user query. Don't make assumptions about what values to plug into \
functions. Here are the available tools:
<tools>
{tools}
</tools>
For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""


def tool_schema(tool: Tool) -> dict[str, Any]:
    """A tool in the OpenAI wire form, which chat templates and the prompt both use."""
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def uses_tools(template_source: str) -> bool:
    """Whether a chat template renders `tools` itself."""
    return re.search(r"\btools\b", template_source) is not None


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments)
    except ValueError:
        return call.arguments


def template_messages(
    messages: Sequence[ChatMessage], tools: Sequence[Tool], native: bool
) -> list[dict[str, Any]]:
    """Messages as the chat template gets them. `native`: the template renders tools and
    tool turns itself; otherwise they are written into the messages in Hermes form."""
    if native:
        return [_native(m) for m in messages]
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            response = f"<tool_response>\n{m.content or ''}\n</tool_response>"
            if out and out[-1].get("tool_responses"):
                out[-1]["content"] += "\n" + response
            else:
                out.append({"role": "user", "content": response, "tool_responses": True})
            continue
        content = m.content or ""
        if m.tool_calls:
            calls = [
                f"{CALL_OPEN}\n"
                + json.dumps({"name": c.name, "arguments": _arguments(c)}, ensure_ascii=False)
                + f"\n{CALL_CLOSE}"
                for c in m.tool_calls
            ]
            content = "\n".join([content, *calls] if content else calls)
        out.append({"role": m.role, "content": content})
    for item in out:
        item.pop("tool_responses", None)
    if tools:
        prompt = _SYSTEM.format(
            tools="\n".join(json.dumps(tool_schema(t), ensure_ascii=False) for t in tools)
        )
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{prompt}"
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def _native(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content or ""}
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": _arguments(c)},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.reasoning:
        out["reasoning_content"] = m.reasoning
    return out


def resolve_tool_choice(
    choice: Any,
    names: Collection[str],
    forced_name: Callable[[dict[str, Any]], Any],
    named_form: str,
) -> tuple[ToolMode, str | None]:
    """(mode, forced function name) of a wire `tool_choice`: "auto", "none", "required",
    or a dict naming one function, which `forced_name` reads in the surface's own shape
    (`named_form` shows it in the error). Checked against the request's tool `names`."""
    if choice in (None, "auto", "none"):
        return choice or "auto", None
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = forced_name(choice)
    elif choice == "required":
        name = None
    else:
        raise InvalidRequest(
            f"Invalid value for 'tool_choice': use 'auto', 'none', 'required' or {named_form}.",
            param="tool_choice",
        )
    if not names:
        raise InvalidRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            param="tool_choice",
        )
    if choice != "required" and name not in names:
        raise InvalidRequest(
            f"Invalid value for 'tool_choice': no function named {name!r} is in 'tools'.",
            param="tool_choice",
        )
    return "required", name


def check_tool_turns(messages: Sequence[ChatMessage]) -> None:
    """Every tool result answers a call an earlier assistant message made."""
    called: set[str] = set()
    for i, m in enumerate(messages):
        called.update(c.id for c in m.tool_calls)
        if m.role != "tool":
            continue
        if not m.tool_call_id:
            raise InvalidRequest(
                f"messages[{i}] is a tool message without 'tool_call_id'.",
                param=f"messages[{i}].tool_call_id",
            )
        if m.tool_call_id not in called:
            raise InvalidRequest(
                f"Invalid parameter: messages[{i}] with role 'tool' must be a response to a "
                f"preceding message with 'tool_calls'; no call has id {m.tool_call_id!r}.",
                param=f"messages[{i}].tool_call_id",
            )


def call_grammar(tools: Sequence[Tool], listed: Sequence[Tool], most: int, tools_param: str) -> str:
    """1 to `most` Hermes calls, each of one of `tools` with arguments valid against its
    schema. `listed` is every tool of the request, for naming the param of a bad schema."""
    builder = GrammarBuilder()
    calls = []
    for i, tool in enumerate(tools):
        param = f"{tools_param}[{listed.index(tool)}].function.parameters"
        args = builder.schema(tool.parameters, f"args-{i}", param)
        name = builder.literal(json.dumps(tool.name))
        arguments = builder.literal('"arguments"')
        calls.append(
            builder.rule(
                f"call-{i}",
                f'"{{" space {builder.literal(chr(34) + "name" + chr(34))} space ":" space '
                f'{name} space "," space {arguments} space ":" space {args} "}}" space',
            )
        )
    block = builder.rule(
        "call-block",
        f"{builder.literal(CALL_OPEN)} [\\n]? ({' | '.join(calls)}) [\\n]? "
        f"{builder.literal(CALL_CLOSE)}",
    )
    more = f" ([\\n]? {block}){{0,{most - 1}}}" if most > 1 else ""
    builder.rule("root", f"{block}{more}")
    return builder.gbnf()
