"""json_safe: a pattern's grammar narrowed to what may stand unescaped between JSON quotes,
read back with the independent GBNF reader."""

from __future__ import annotations

import pytest

from hearth.chat.patterns import json_safe
from tests.chat.gbnf import GBNF, Cls

PRINTABLE = {chr(c) for c in range(0x20, 0x7F)}


def admitted(body: str) -> set[str]:
    return GBNF(f"root ::= {json_safe(body, 'p')}").strings()


def negated_ranges(body: str) -> set[tuple[int, int]]:
    [[item]] = [seq.items for seq in GBNF(f"root ::= {json_safe(body, 'p')}").rules["root"].options]
    assert isinstance(item, Cls) and item.negated
    return set(item.ranges)


def test_a_class_loses_the_characters_json_escapes() -> None:
    assert admitted("[ -~]") == PRINTABLE - {'"', "\\"}
    assert admitted("[\\x00-\\x7F]") == PRINTABLE - {'"', "\\"}


def test_a_negated_class_also_refuses_what_json_escapes() -> None:
    assert negated_ranges("[^,]") == {(0x2C, 0x2C), (0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C),
                                      (0x7F, 0x7F)}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "chars"),
    [
        ("[\\x41-\\x43]", {"A", "B", "C"}),
        ("[\\u00e9\\U0001F600]", {"é", "😀"}),
        ("[\\]\\[\\-\\^]", {"]", "[", "-", "^"}),
        ("[a-]", {"a", "-"}),  # a dash at the end is itself
        ("[a\\n\\t\\r]", {"a"}),  # the control characters go
        ("[a-c\\\\]", {"a", "b", "c"}),  # and the backslash
        ("[\\.\\$\\/]", {".", "$", "/"}),  # escaped punctuation is itself
    ],
)
def test_class_escapes(body: str, chars: set[str]) -> None:
    assert admitted(body) == chars


def test_literals_references_and_operators_are_kept_as_they_are() -> None:
    assert json_safe('"ab" [0-1]+ rule-1 ("[x]" | "y")?', "p") == (
        '"ab" [\\U00000030-\\U00000031]+ rule-1 ("[x]" | "y")?'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[\\x00-\\x1F"]', "only characters JSON escapes"),
        ("[\\n]", "only characters JSON escapes"),
        ("[\\d]", "unsupported escape"),
        ('"a\\"b"', "JSON would escape"),
        ('"a\\\\b"', "JSON would escape"),
    ],
)
def test_what_cannot_be_made_safe_is_refused(body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        json_safe(body, "p")
