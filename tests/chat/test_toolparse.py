"""The streaming split of a reply into content and tool calls, fed in every chunking."""

from __future__ import annotations

import json
import random

import pytest

from hearth.chat.toolparse import ToolCallParser
from hearth.chat.types import ToolCallDelta

NAMES = {"get_weather", "add", "python"}


def run(text: str, sizes: list[int] | None = None) -> tuple[str, list[dict[str, str]], list]:
    """Feeds `text` in chunks; returns (content, calls from the deltas, all pieces)."""
    ids = iter(f"call_{i}" for i in range(100))
    parser = ToolCallParser(NAMES, lambda: next(ids))
    pieces = []
    at = 0
    for size in sizes or [len(text)]:
        pieces += parser.feed(text[at : at + size])
        at += size
    pieces += parser.feed(text[at:])
    pieces += parser.finish()
    content = "".join(p for p in pieces if isinstance(p, str))
    calls: list[dict[str, str]] = []
    for p in pieces:
        if isinstance(p, ToolCallDelta):
            if p.id is not None:
                assert p.call == len(calls) and p.name and p.arguments == ""
                calls.append({"id": p.id, "name": p.name, "arguments": ""})
            calls[p.call]["arguments"] += p.arguments
    assert [c["arguments"] for c in calls] == [c.arguments for c in parser.calls]
    return content, calls, pieces


def chunkings(text: str, n: int = 40) -> list[list[int]]:
    rng = random.Random(len(text))
    out = [[1] * len(text), [2] * len(text), [len(text)]]
    for _ in range(n):
        out.append([rng.randint(1, 7) for _ in range(len(text))])
    return out


HERMES = (
    "Let me check.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris \\"centre\\"", "days": [1, 2]}}\n'
    "</tool_call>\n<tool_call>\n"
    '{"name": "add", "arguments": {"a": 1, "b": {"c": "}"}}}\n</tool_call>'
)


@pytest.mark.parametrize("sizes", chunkings(HERMES))
def test_hermes_calls_in_any_chunking(sizes: list[int]) -> None:
    content, calls, pieces = run(HERMES, sizes)
    assert content == "Let me check.\n"
    assert [c["name"] for c in calls] == ["get_weather", "add"]
    assert json.loads(calls[0]["arguments"]) == {"city": 'Paris "centre"', "days": [1, 2]}
    assert json.loads(calls[1]["arguments"]) == {"a": 1, "b": {"c": "}"}}
    assert all("<" not in p for p in pieces if isinstance(p, str) and p != content)


def test_arguments_stream_before_the_call_closes() -> None:
    parser = ToolCallParser(NAMES, lambda: "call_x")
    head = parser.feed('<tool_call>\n{"name": "add", "arguments": {"a": 1')
    assert head[0] == ToolCallDelta(call=0, id="call_x", name="add")
    assert "".join(p.arguments for p in head if isinstance(p, ToolCallDelta)) == '{"a": 1'


def test_plain_text_passes_through_and_a_tag_prefix_waits() -> None:
    parser = ToolCallParser(NAMES)
    assert parser.feed("Use <b>bold</b> or <tool") == ["Use <b>bold</b> or "]
    assert parser.feed("box> please") == ["<toolbox> please"]
    assert parser.finish() == []
    assert parser.calls == []


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        '  [{"name": "get_weather", "arguments": {"city": "Oslo"}}]',
        '<tool_call>[{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}]</tool_call>',
        '<tool_call>{"arguments": {"city": "Oslo"}, "name": "get_weather"}</tool_call>',
    ],
)
def test_bare_json_lists_and_other_orders_are_calls(text: str) -> None:
    for sizes in chunkings(text, 5):
        content, calls, _ = run(text, sizes)
        assert content.strip() == ""
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
            ("get_weather", {"city": "Oslo"})
        ]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "rm_rf", "arguments": {}}',  # not a listed tool
        '{"answer": 42}',
        "[1, 2, 3] are numbers",
        "<tool_call>not json</tool_call>",
    ],
)
def test_what_is_not_a_call_stays_content(text: str) -> None:
    content, calls, _ = run(text, [3] * len(text))
    assert calls == []
    assert content == text


def test_a_call_cut_short_keeps_what_streamed() -> None:
    content, calls, _ = run('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b"', [5] * 20)
    assert content == ""
    assert calls[0]["name"] == "add" and calls[0]["arguments"] == '{"a": 1, "b"'


# A closing tag written inside a JSON string is part of the string: the grammar of a call
# allows any text in a string, so a model may write `</tool_call>` there (issue #21).
SPLIT = [
    (
        # What the bundled model writes greedily for "Write an example" with a `python` tool.
        '<tool_call>\n{"name": "python", "arguments": {"code": "def my_function(){return 10;}}'
        '</tool_call>  # returns: {" }}\n</tool_call>',
        [("python", {"code": "def my_function(){return 10;}}</tool_call>  # returns: {"})],
    ),
    (
        '<tool_call>{"name": "python", "arguments": {"code": "print(\'</tool_call>\')"}}'
        "</tool_call>",
        [("python", {"code": "print('</tool_call>')"})],
    ),
    (  # escaped quotes just before the tag do not end the string
        '<tool_call>\n{"name": "python", "arguments": {"code": "s = \\"\\\\\\"</tool_call>\\""}}'
        "\n</tool_call>",
        [("python", {"code": 's = "\\"</tool_call>"'})],
    ),
    (  # an escaped backslash does end it: the tag after the object is the real close
        '<tool_call>{"name": "add", "arguments": {"a": "C:\\\\", "b": "</tool_call>"}}</tool_call>',
        [("add", {"a": "C:\\", "b": "</tool_call>"})],
    ),
    (  # both tags in one string
        '<tool_call>\n{"name": "python", "arguments": {"code": "<tool_call>x</tool_call>"}}'
        "\n</tool_call>",
        [("python", {"code": "<tool_call>x</tool_call>"})],
    ),
    (  # the first of two calls holds the tag; the second is a call of its own
        '<tool_call>\n{"name": "python", "arguments": {"code": "a</tool_call>\\n<tool_call>"}}'
        '\n</tool_call>\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n'
        "</tool_call>",
        [("python", {"code": "a</tool_call>\n<tool_call>"}), ("add", {"a": 1, "b": 2})],
    ),
    (  # a list of calls in one pair of tags, arguments as an object and as JSON text
        '<tool_call>[{"name": "add", "arguments": {"s": "</tool_call>"}}, '
        '{"name": "python", "arguments": "{\\"code\\": \\"</tool_call>\\"}"}]</tool_call>',
        [("add", {"s": "</tool_call>"}), ("python", {"code": "</tool_call>"})],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    SPLIT,
    ids=[
        "model",
        "quoted",
        "escaped-quotes",
        "escaped-backslash",
        "both-tags",
        "two-calls",
        "list",
    ],
)
def test_a_closing_tag_inside_a_string_does_not_end_the_call(
    text: str, expected: list[tuple[str, dict]]
) -> None:
    for sizes in chunkings(text, 20):  # whole, one character at a time, and split anywhere
        content, calls, _ = run(text, sizes)
        assert content == "", sizes
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == expected, sizes


def test_a_call_cut_inside_a_string_with_the_tag_keeps_it_in_its_arguments() -> None:
    text = '<tool_call>\n{"name": "python", "arguments": {"code": "x = 1</tool_call>\\n<tool'
    for sizes in chunkings(text, 10):
        content, calls, _ = run(text, sizes)
        assert content == "", sizes
        assert [c["name"] for c in calls] == ["python"]
        assert calls[0]["arguments"] == '{"code": "x = 1</tool_call>\\n<tool', sizes


@pytest.mark.parametrize(
    "text", ['Sure. <tool_call>\n{"name": "get_wea', 'Sure. <tool_call>\n{"name": "python"']
)
def test_a_call_cut_before_its_name_is_whole_is_no_content(text: str) -> None:
    """A reply that ran out of tokens inside a call shows none of its markup; one that
    ended there on its own (no grammar held it) keeps the text as content."""
    cut = ToolCallParser(NAMES)
    pieces = cut.feed(text) + cut.finish(cut=True)
    assert "".join(p for p in pieces if isinstance(p, str)).strip() == "Sure."
    assert not cut.calls
    ended = ToolCallParser(NAMES)
    pieces = ended.feed(text) + ended.finish()
    assert "".join(p for p in pieces if isinstance(p, str)) == text
