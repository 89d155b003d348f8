"""The model's text turned into what a reply holds: a reasoning model's thinking split off
first (ReasoningDelta), then tool calls parsed out of what remains, so that a call (or a
JSON answer) after the thinking parses as if the thinking were not there."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import replace

from hearth.chat.reasoning import ReasoningSplitter, ReasoningSyntax
from hearth.chat.toolparse import ToolCallParser
from hearth.core.ids import new_id
from hearth.engine.types import (
    Finished,
    GenerationEvent,
    ReasoningDelta,
    TokenEvent,
    ToolCall,
    ToolCallDelta,
)

# A choice's reasoning syntax (None: it does not reason) and whether it starts inside.
ReasoningOf = Callable[[int], tuple[ReasoningSyntax | None, bool]]


class ReplyParsers:
    """The parsers of one reply's choices, made as each choice's first event comes."""

    def __init__(
        self, tool_names: tuple[str, ...], call_id_prefix: str, reasoning_of: ReasoningOf
    ) -> None:
        self._tool_names = tool_names
        self._prefix = call_id_prefix
        self._make_id = functools.partial(new_id, call_id_prefix)
        self._reasoning_of = reasoning_of
        self._splitters: dict[int, ReasoningSplitter | None] = {}
        self._tools: dict[int, ToolCallParser] = {}
        self.reasoning_tokens: dict[int, int] = {}  # ~ one a raw event inside the reasoning

    def parse(self, index: int, event: GenerationEvent) -> list[GenerationEvent]:
        if isinstance(event, ToolCallDelta) and event.id and not event.id.startswith(self._prefix):
            # An engine's own call id (a pool member's call_…) in the surface's form
            # (Anthropic's toolu_…), the same each time, so a turn's tool result still
            # names its call when the history goes back to the engine.
            return [replace(event, id=self._prefix + event.id.removeprefix("call_"))]
        if isinstance(event, ToolCallDelta | ReasoningDelta):
            return [event]
        splitter = self._splitter(index)
        if splitter is None:
            return self._calls(index, event)
        pieces = splitter.feed(event.text) if isinstance(event, TokenEvent) else splitter.finish()
        out: list[GenerationEvent] = []
        text = ""
        for kind, piece in pieces:
            if kind == "reasoning":
                out.append(ReasoningDelta(piece, index))
            else:
                text += piece
        if isinstance(event, TokenEvent):
            if splitter.in_reasoning:
                self.reasoning_tokens[index] = self.reasoning_tokens.get(index, 0) + 1
            if text or (event.logprobs and not pieces and not splitter.in_reasoning):
                # the answer's text keeps its token's logprobs; the thinking's do not
                out += self._calls(index, replace(event, text=text))
            return out
        if text:  # held at the end, before the Finished
            out += self._calls(index, TokenEvent(text, index))
        return out + self._calls(index, event)

    def _splitter(self, index: int) -> ReasoningSplitter | None:
        if index not in self._splitters:
            syntax, inside = self._reasoning_of(index)
            splitter = None if syntax is None else ReasoningSplitter(syntax, inside=inside)
            self._splitters[index] = splitter
        return self._splitters[index]

    def _calls(self, index: int, event: GenerationEvent) -> list[GenerationEvent]:
        """Tool calls out of the answer's text, when the request offered tools."""
        if not self._tool_names:
            return [event]
        parser = self._tools.get(index)
        if parser is None:
            parser = self._tools[index] = ToolCallParser(self._tool_names, self._make_id)
        if isinstance(event, TokenEvent):
            pieces = parser.feed(event.text)
            if all(isinstance(p, str) for p in pieces):
                # plain content: keeps its token's logprobs
                text = "".join(pieces)  # type: ignore[arg-type]
                return [replace(event, text=text)] if text or event.logprobs else []
            return [_piece(piece, index) for piece in pieces]
        if isinstance(event, Finished):
            out = [_piece(piece, index) for piece in parser.finish(cut=event.reason == "length")]
            if event.reason == "stop" and _whole_calls(parser.calls):
                event = replace(event, reason="tool_calls")
            return [*out, event]
        return [event]


def _whole_calls(calls: list[ToolCall]) -> bool:
    """Whether a choice made calls, each with arguments that are a JSON object: only then
    does it finish with "tool_calls" (a backend without a call grammar can stop mid-call)."""
    for call in calls:
        try:
            if not isinstance(json.loads(call.arguments), dict):
                return False
        except ValueError:
            return False
    return bool(calls)


def _piece(piece: str | ToolCallDelta, index: int) -> GenerationEvent:
    if isinstance(piece, str):
        return TokenEvent(text=piece, index=index)
    return replace(piece, index=index)
