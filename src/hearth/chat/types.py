"""The conversation vocabulary shared by templates, tool handling and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; `parameters` is its arguments' JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})

    @classmethod
    def function(
        cls, name: str, description: str | None, parameters: dict[str, Any] | None
    ) -> Tool:
        """From the wire's optional fields: no parameters means none, not any."""
        return cls(name, description or "", parameters or {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: `arguments` is the JSON text of an object."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message after the surface has normalised its wire form (content is plain text)."""

    role: str
    content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    # An earlier assistant turn's reasoning, for templates that show it (Qwen3 keeps the
    # thinking of the turns since the last user message, in a tool-call loop).
    reasoning: str | None = None


@dataclass(frozen=True, slots=True)
class Grammar:
    """A GBNF grammar. With a `trigger` (a text) it is lazy: output is free until the
    trigger appears in it, and constrained from the trigger's first character on."""

    gbnf: str
    trigger: str | None = None
    # The OpenAI `response_format` this grammar enforces, when it came from one: what an
    # upstream engine (engine/upstream) is sent, as it takes no GBNF of ours.
    response_format: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call of one choice. The first piece of a call carries its `id`
    and `name`; the `arguments` pieces of a call concatenate to its JSON arguments."""

    call: int  # the call's position among its choice's calls
    arguments: str = ""
    index: int = 0
    id: str | None = None
    name: str | None = None
