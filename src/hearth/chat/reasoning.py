"""Reasoning models: which markers a model puts around its thinking, and splitting a
reply's text into reasoning and answer as it streams.

Three families cover the models people run: `think` (`<think>`…`</think>`: Qwen3, QwQ,
DeepSeek-R1 and its distills, SmolLM3), `harmony` (gpt-oss: `<|channel|>analysis<|message|>`
… then `<|channel|>final<|message|>` for the answer) and `think_brackets` (Magistral:
`[THINK]`…`[/THINK]`). The family is read from the chat template (and the vocabulary, when
given); a model entry's `reasoning_format` overrides it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["think", "harmony", "think_brackets"]
FAMILIES: tuple[Family, ...] = ("think", "harmony", "think_brackets")
# What a model entry's `reasoning_format` may say.
REASONING_FORMATS = ("auto", "none", *FAMILIES)

_HARMONY_ANSWER = "<|start|>assistant<|channel|>final<|message|>"


@dataclass(frozen=True, slots=True)
class ReasoningSyntax:
    family: Family
    open: str  # what opens the reasoning
    close: str  # what Hearth writes to close it (a spent budget): the answer follows
    # Template variables that turn thinking off (enable_thinking=False): None when the
    # template has none, and Hearth closes the block in the prompt itself.
    off_switch: str | None = None
    # The template takes `reasoning_effort` (gpt-oss: low, medium, high).
    takes_effort: bool = False

    @property
    def end(self) -> str:
        """The marker that ends the reasoning in the model's own output."""
        return "<|end|>" if self.family == "harmony" else self.close

    @property
    def answer_start(self) -> str:
        """What the answer follows: a grammar for the answer starts here."""
        return "<|channel|>final<|message|>" if self.family == "harmony" else self.close

    @property
    def markers(self) -> tuple[str, ...]:
        """The family's marker tokens, which a reply shows as text."""
        return _HARMONY_MARKERS if self.family == "harmony" else (self.open, self.close)


def _syntax(family: Family, template: str) -> ReasoningSyntax:
    if family == "harmony":
        return ReasoningSyntax(
            family,
            "<|channel|>analysis<|message|>",
            "<|end|>" + _HARMONY_ANSWER,
            takes_effort="reasoning_effort" in template,
        )
    if family == "think_brackets":
        return ReasoningSyntax(family, "[THINK]", "[/THINK]")
    switch = "enable_thinking" if re.search(r"\benable_thinking\b", template) else None
    return ReasoningSyntax(family, "<think>", "</think>", off_switch=switch)


def detect(template: str | None, vocab: Collection[str] = ()) -> Family | None:
    """The family whose markers the chat template writes (or, without a template, whose
    markers the vocabulary holds); None for a model that does not reason."""
    text = template or ""
    if "<|channel|>" in text and "analysis" in text:
        return "harmony"
    if "[THINK]" in text or (not text and {"[THINK]", "[/THINK]"} <= set(vocab)):
        return "think_brackets"
    if "</think>" in text or (not text and {"<think>", "</think>"} <= set(vocab)):
        return "think"
    return None


def resolve(
    setting: str, template: str | None, vocab: Collection[str] = ()
) -> ReasoningSyntax | None:
    """The syntax a model is served with: `setting` is a model entry's reasoning_format
    (auto: detected; none: no reasoning, everything is the answer; or a family)."""
    if setting == "none":
        return None
    family = detect(template, vocab) if setting == "auto" else setting
    if family is None:
        return None
    if family not in FAMILIES:
        raise ValueError(f"unknown reasoning format {setting!r}")
    return _syntax(family, template or "")  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ThinkingControl:
    """What a request asks of the model's thinking."""

    think: bool | None = None  # None: the model's default; False: off; True: on
    effort: str | None = None  # low | medium | high (the family's levels)


EFFORTS = ("none", "minimal", "low", "medium", "high")


def effort_control(effort: str | None) -> ThinkingControl:
    """OpenAI's reasoning_effort: none and minimal turn thinking off; low, medium and high
    turn it on at the family's level of that name, where it has levels."""
    if effort is None:
        return ThinkingControl()
    if effort in ("none", "minimal"):
        return ThinkingControl(think=False)
    return ThinkingControl(think=True, effort=effort)


# A family without levels of its own (the think family) gets the effort as a budget of
# reasoning tokens: low and medium bound it, high leaves it to --reasoning-budget. Sized
# from Anthropic's smallest budget (1,024) and four times that.
EFFORT_BUDGETS = {"low": 1024, "medium": 4096}


def effort_budget(syntax: ReasoningSyntax, effort: str | None) -> int | None:
    """The reasoning budget an effort stands for in this family; None: no bound from it."""
    if syntax.takes_effort or effort is None:
        return None
    return EFFORT_BUDGETS.get(effort)


def template_vars(syntax: ReasoningSyntax, control: ThinkingControl) -> dict[str, Any]:
    """The template variables that carry a request's thinking control."""
    out: dict[str, Any] = {}
    if syntax.off_switch is not None and control.think is not None:
        out[syntax.off_switch] = control.think
    if syntax.takes_effort:
        # gpt-oss cannot stop reasoning: "off" is its lowest level.
        effort = "low" if control.think is False else control.effort
        if effort in ("low", "medium", "high"):
            out["reasoning_effort"] = effort
    return out


def answer_grammar(gbnf: str, syntax: ReasoningSyntax) -> str:
    """A grammar for the answer of a reply that reasons first: free until the reasoning
    closes, then `gbnf` (used as a lazy grammar whose trigger is `syntax.answer_start`)."""
    literal = syntax.answer_start.replace("\\", "\\\\").replace('"', '\\"')
    body = re.sub(r"(?m)^root(\s*::=)", r"reasoned-answer\1", gbnf)
    return f'root ::= "{literal}" [ \\t\\n]* reasoned-answer\n{body}'


def inside(prompt: str, syntax: ReasoningSyntax) -> bool:
    """Whether the prompt ends inside an open reasoning block (the generation prompt of
    DeepSeek-R1 and QwQ opens `<think>` itself): the reply starts as reasoning."""
    return prompt.rstrip().endswith(syntax.open)


# Where a reasoning model's reply starts: inside a block the prompt opened, after a
# block the prompt closed (thinking off), or free to open one; None: not read for it.
Start = Literal["inside", "closed", "open"] | None


def reply_start(prompt: str, syntax: ReasoningSyntax) -> Start:
    if inside(prompt, syntax):
        return "inside"
    if syntax.family != "harmony" and prompt.rstrip().endswith(syntax.close):
        return "closed"
    return "open"


def close_in_prompt(prompt: str, syntax: ReasoningSyntax) -> str:
    """A prompt with thinking turned off where the template has no switch for it: an
    empty reasoning block, opened and closed, so the model goes straight to the answer
    (what Qwen3's own template writes for enable_thinking=False)."""
    if syntax.family == "harmony":
        return prompt  # gpt-oss always reasons; its effort is set instead
    if inside(prompt, syntax):
        return prompt.rstrip() + "\n\n" + syntax.close + "\n\n"
    return prompt + syntax.open + "\n\n" + syntax.close + "\n\n"


Kind = Literal["reasoning", "content"]
Piece = tuple[Kind, str]

_HARMONY_MARKERS = (
    "<|channel|>",
    "<|message|>",
    "<|end|>",
    "<|start|>",
    "<|return|>",
    "<|call|>",
    "<|constrain|>",
)
_HEADER_LIMIT = 128  # header text (role, channel, recipient) longer than this is not one


class ReasoningSplitter:
    """Splits one choice's text, as it streams, into reasoning and answer pieces.

    A marker split across tokens is held back until it is whole. Whitespace between the
    markers and the text (the "\\n" after `<think>`, the "\\n\\n" after `</think>`) is
    dropped. A reply cut inside the reasoning leaves the answer empty: nothing held is
    ever moved into the answer."""

    def __init__(self, syntax: ReasoningSyntax, *, inside: bool = False) -> None:
        self.syntax = syntax
        self._harmony = syntax.family == "harmony"
        self._markers = _HARMONY_MARKERS if self._harmony else (syntax.open, syntax.close)
        self._held = ""  # a possible marker's start
        # think families: start | reasoning | content; harmony: header | reasoning | content
        self._state = "reasoning" if inside else ("header" if self._harmony else "start")
        self._lead = True  # whitespace at the start of the current part is dropped
        self._trail = ""  # reasoning's trailing whitespace, kept until more text follows
        self._header = ""
        self.reasoning_pieces = 0  # pieces of reasoning text given out (~ tokens)

    @property
    def in_reasoning(self) -> bool:
        return self._state == "reasoning"

    def feed(self, text: str) -> list[Piece]:
        out: list[Piece] = []
        buf = self._held + text
        self._held = ""
        while buf:
            at, marker = self._find(buf)
            if marker is None:
                keep = self._partial(buf)
                self._text(buf[: len(buf) - keep], out)
                self._held = buf[len(buf) - keep :] if keep else ""
                break
            self._text(buf[:at], out)
            self._marker(marker, out)
            buf = buf[at + len(marker) :]
        return out

    def finish(self) -> list[Piece]:
        """The end of the reply: a held partial marker is text after all (of the part the
        reply was in: reasoning stays reasoning)."""
        out: list[Piece] = []
        held, self._held = self._held, ""
        if self._state == "header":
            # Text that never became a harmony message: the model did not use channels.
            held, self._header = self._header + held, ""
            self._state = "content"
        self._text(held, out)
        return out

    def _find(self, buf: str) -> tuple[int, str | None]:
        best, found = len(buf), None
        for marker in self._markers:
            at = buf.find(marker)
            if at != -1 and at < best:
                best, found = at, marker
        return best, found

    def _partial(self, buf: str) -> int:
        """How many characters at the end of `buf` could start a marker."""
        for k in range(min(max(map(len, self._markers)) - 1, len(buf)), 0, -1):
            tail = buf[-k:]
            if any(m.startswith(tail) for m in self._markers):
                return k
        return 0

    def _text(self, text: str, out: list[Piece]) -> None:
        if not text:
            return
        state = self._state
        if state == "header":
            self._header += text
            if len(self._header) > _HEADER_LIMIT:
                self._state, text, self._header = "content", self._header, ""
                self._emit("content", text, out)
            return
        if state == "start":
            if not text.strip():
                self._header += text  # leading whitespace: before a block, or the answer's
                return
            self._state = "content"
            text, self._header = self._header + text, ""
            self._lead = False
        self._emit(self._state, text, out)  # type: ignore[arg-type]

    def _emit(self, kind: Kind, text: str, out: list[Piece]) -> None:
        if self._lead:
            text = text.lstrip()
            if not text:
                return
            self._lead = False
        if kind == "reasoning":
            body = text.rstrip()
            if not body:  # only whitespace: held until text follows it
                self._trail += text
                return
            text, self._trail = self._trail + body, text[len(body) :]
            self.reasoning_pieces += 1
        out.append((kind, text))

    def _marker(self, marker: str, out: list[Piece]) -> None:
        if self._harmony:
            self._harmony_marker(marker, out)
            return
        if marker == self.syntax.open and self._state == "start":
            self._state, self._header, self._lead = "reasoning", "", True
        elif marker == self.syntax.close and self._state in ("start", "reasoning"):
            self._state, self._header, self._lead, self._trail = "content", "", True, ""
        else:  # a marker where it means nothing is text of the part it is in
            self._emit("reasoning" if self._state == "reasoning" else "content", marker, out)

    def _harmony_marker(self, marker: str, out: list[Piece]) -> None:
        if marker == "<|message|>" and self._state == "header":
            header, self._header = self._header, ""
            channel = header.split("<|channel|>")[-1].strip().split(" ")[0] if header else ""
            self._state = "reasoning" if channel == "analysis" else "content"
            self._lead, self._trail = True, ""
            return
        if self._state == "header":
            self._header += marker  # part of the header (<|channel|>, <|constrain|>)
            return
        # Any other marker ends the message: a header follows.
        self._state, self._header = "header", marker if marker == "<|channel|>" else ""
