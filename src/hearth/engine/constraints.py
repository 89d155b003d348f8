"""Which grammar a request decodes under: its tools' calls, or its own response format."""

from __future__ import annotations

from hearth.chat.tools import CALL_OPEN, MAX_PARALLEL_CALLS, call_grammar
from hearth.core.errors import InvalidRequest
from hearth.engine.types import GenerationRequest, Grammar


def request_grammar(request: GenerationRequest, tools_param: str = "tools") -> Grammar | None:
    """The grammar a request decodes under: its tools' calls, or its own response format."""
    if not request.calls_tools:
        return request.grammar
    if request.grammar is not None and request.tool_choice == "auto":
        raise InvalidRequest(
            "A response format other than text together with tools is not supported; "
            "send one or the other.",
            param="response_format",
        )
    tools = request.tools
    if request.tool_name is not None:
        tools = tuple(t for t in tools if t.name == request.tool_name)
    forced = request.tool_choice == "required" or request.tool_name is not None
    most = MAX_PARALLEL_CALLS if request.parallel_tool_calls and request.tool_name is None else 1
    gbnf = call_grammar(tools, request.tools, most, tools_param)
    # Lazy: free text until the model opens a call (anywhere in its reply).
    return Grammar(gbnf, None if forced else CALL_OPEN)
