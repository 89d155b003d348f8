"""A choice's text split into reasoning, answer and tool calls, event by event."""

from __future__ import annotations

from hearth.chat.reasoning import ReasoningSyntax
from hearth.engine.types import (
    Finished,
    GenerationEvent,
    ReasoningDelta,
    TokenEvent,
    TokenLogprob,
    ToolCallDelta,
    Usage,
)
from hearth.services.reply_parsing import ReplyParsers

THINK = ReasoningSyntax("think", "<think>", "</think>")
DONE = Finished("stop", Usage(1, 1))


def run(parsers: ReplyParsers, texts: list[str], end: Finished = DONE) -> list[GenerationEvent]:
    events: list[GenerationEvent] = [TokenEvent(t) for t in texts]
    return [out for e in [*events, end] for out in parsers.parse(0, e)]


def reasoning(syntax: ReasoningSyntax | None = THINK, inside: bool = False) -> ReplyParsers:
    return ReplyParsers((), "call_", lambda _: (syntax, inside))


def test_thinking_then_an_answer_split_across_tokens() -> None:
    parsers = reasoning()
    out = run(parsers, ["<thi", "nk>\nHm", "m.\n</th", "ink>\n\nYes"])
    assert "".join(e.text for e in out if isinstance(e, ReasoningDelta)) == "Hmm."
    assert "".join(e.text for e in out if isinstance(e, TokenEvent)) == "Yes"
    assert out[-1] == DONE
    assert parsers.reasoning_tokens == {0: 2}  # the events that ended inside it


def test_a_tool_call_after_the_thinking_parses() -> None:
    parsers = ReplyParsers(("ping",), "call_", lambda _: (THINK, True))
    call = '<tool_call>\n{"name": "ping", "arguments": {}}\n</tool_call>'
    out = run(parsers, ["I should ping.", "</think>\n", call])
    deltas = [e for e in out if isinstance(e, ToolCallDelta)]
    assert deltas[0].name == "ping" and "".join(d.arguments for d in deltas) == "{}"
    assert out[-1].reason == "tool_calls"  # type: ignore[union-attr]
    assert not any(isinstance(e, TokenEvent) and e.text.strip() for e in out)


def test_the_thinking_keeps_no_logprobs_the_answer_does() -> None:
    lp = (TokenLogprob("x", b"x", -0.1),)
    out = [
        o
        for e in [TokenEvent("<think>a", logprobs=lp), TokenEvent("</think>b", logprobs=lp)]
        for o in reasoning().parse(0, e)
    ]
    assert [type(e).__name__ for e in out] == ["ReasoningDelta", "TokenEvent"]
    assert out[1] == TokenEvent("b", logprobs=lp)


def test_a_model_that_does_not_reason_passes_through() -> None:
    events = [TokenEvent("<think>x</think>y")]
    assert [o for e in events for o in reasoning(None).parse(0, e)] == events


def test_an_engines_call_ids_take_the_surfaces_prefix() -> None:
    parsers = ReplyParsers(("f",), "toolu_", lambda _: (None, False))
    first = ToolCallDelta(call=0, arguments="{", index=0, id="call_abc", name="f")
    rest = ToolCallDelta(call=0, arguments="}", index=0)
    assert parsers.parse(0, first) == [ToolCallDelta(0, "{", 0, "toolu_abc", "f")]
    assert parsers.parse(0, rest) == [rest]
    own = ToolCallDelta(call=1, index=0, id="toolu_x", name="f")
    assert parsers.parse(0, own) == [own]
