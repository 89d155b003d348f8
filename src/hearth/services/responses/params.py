"""What a create-response request asks for, once the surface has parsed it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hearth.chat.output_format import format_grammar
from hearth.chat.tools import ToolMode, resolve_tool_choice
from hearth.chat.types import Grammar, Tool
from hearth.core.errors import InvalidRequest

LOGPROBS = "message.output_text.logprobs"
# What `include` may name (the openai SDK's ResponseIncludable). The others add outputs
# of tools and inputs this server does not have, so asking for them changes nothing.
INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    LOGPROBS,
)


@dataclass
class ResponseParams:
    model: str
    input: Any  # a string or a list of items, checked by services.items
    instructions: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    text: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    store: bool = True
    previous_response_id: str | None = None
    conversation: str | None = None
    stream: bool = False
    background: bool = False
    truncation: Literal["auto", "disabled"] = "disabled"
    tools: list[Any] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    user: str | None = None
    include: list[str] = field(default_factory=list)
    top_logprobs: int | None = None
    reasoning_effort: str | None = None  # none | minimal | low | medium | high

    @property
    def logprobs(self) -> int | None:
        """Alternatives per token to report (the sampled token's own logprob with them),
        or None: OpenAI reports logprobs only when `include` asks for them."""
        return (self.top_logprobs or 0) if LOGPROBS in self.include else None

    def check(self) -> None:
        for i, value in enumerate(self.include):
            if value not in INCLUDABLE:
                raise InvalidRequest(
                    f"Invalid value: {value!r}. Supported values are: "
                    + ", ".join(repr(v) for v in INCLUDABLE)
                    + ".",
                    param=f"include[{i}]",
                )
        if self.previous_response_id and self.conversation:
            raise InvalidRequest(
                "Mutually exclusive parameters: provide only one of 'previous_response_id' "
                "or 'conversation'.",
                param="conversation",
            )
        if self.background and not self.store:
            raise InvalidRequest(
                "Background responses must be stored: 'background' needs 'store' true.",
                param="background",
            )
        self.engine_tools()
        self.engine_tool_choice()

    def echoed(self) -> dict[str, Any]:
        """The request fields a Response object shows back."""
        return {
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "text": self.text or {"format": {"type": "text"}},
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            "truncation": self.truncation,
            "store": self.store,
            "user": self.user,
            "top_logprobs": self.top_logprobs,
            "reasoning_effort": self.reasoning_effort,
        }

    def engine_tools(self) -> tuple[Tool, ...]:
        """The function tools (the Responses API's flat shape); other kinds are refused."""
        tools: list[Tool] = []
        for i, tool in enumerate(self.tools):
            param = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise InvalidRequest(
                    f"Invalid value for '{param}.type': only 'function' tools are supported "
                    "by this server.",
                    param=f"{param}.type",
                )
            name, parameters = tool.get("name"), tool.get("parameters")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"'{param}.name' must be a string.", param=f"{param}.name")
            if parameters is not None and not isinstance(parameters, dict):
                raise InvalidRequest(
                    f"'{param}.parameters' must be a JSON schema object.",
                    param=f"{param}.parameters",
                )
            if any(t.name == name for t in tools):
                raise InvalidRequest(
                    f"Duplicate function name {name!r} in 'tools'.", param=f"{param}.name"
                )
            description = tool.get("description")
            tools.append(Tool.function(name, description, parameters))
        return tuple(tools)

    def engine_tool_choice(self) -> tuple[ToolMode, str | None]:
        """(mode, forced function name) of `tool_choice`, checked against `tools`."""
        return resolve_tool_choice(
            self.tool_choice,
            [t.get("name") for t in self.tools],
            lambda c: c.get("name"),
            "{'type': 'function', 'name': ...}",
        )

    def grammar(self) -> Grammar | None:
        """`text.format` as a grammar: any JSON object, or JSON valid against a schema."""
        return format_grammar((self.text or {}).get("format"), "text.format", "schema")
