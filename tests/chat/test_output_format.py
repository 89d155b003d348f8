"""chat/output_format.py: the three APIs' output formats, checked by one function."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.chat.output_format import format_grammar
from hearth.chat.structured import SchemaNotSupported, json_object_grammar, schema_grammar
from hearth.core.errors import InvalidRequest

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_text_is_no_grammar() -> None:
    assert format_grammar(None, "response_format") is None
    assert format_grammar({"type": "text"}, "response_format") is None
    assert format_grammar("auto", "response_format", auto=True) is None


def test_json_object_and_json_schema_in_both_shapes() -> None:
    assert format_grammar({"type": "json_object"}, "response_format") == json_object_grammar()
    nested = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}}
    assert format_grammar(nested, "response_format") == schema_grammar(SCHEMA)
    flat = {"type": "json_schema", "name": "n", "schema": SCHEMA}
    assert format_grammar(flat, "text.format", "schema") == schema_grammar(SCHEMA)


@pytest.mark.parametrize(
    ("fmt", "schema_at", "param"),
    [
        ({"type": "json_schema"}, "json_schema.schema", "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": "x"},
            "json_schema.schema",
            "response_format.json_schema",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "x"}},
            "json_schema.schema",
            "response_format.json_schema.schema",
        ),
        ({"type": "json_schema", "name": "x"}, "schema", "response_format.schema"),
        ({"type": "json_schema", "schema": []}, "schema", "response_format.schema"),
    ],
)
def test_a_missing_schema_names_the_first_missing_param(
    fmt: dict[str, Any], schema_at: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        format_grammar(fmt, "response_format", schema_at)
    assert info.value.param == param
    assert f"needs '{schema_at}'" in info.value.message


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "yaml"}, "text.format.type"),
        ({"schema": SCHEMA}, "text.format.type"),
        ("json", "text.format"),
        ("auto", "text.format"),  # "auto" is the Assistants API's alone
        ([], "text.format"),
    ],
)
def test_a_bad_format_names_its_param(fmt: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        format_grammar(fmt, "text.format", "schema")
    assert info.value.param == param
    assert "'auto'" not in info.value.message


def test_auto_is_offered_where_it_is_allowed() -> None:
    with pytest.raises(InvalidRequest) as info:
        format_grammar("json", "response_format", auto=True)
    assert "'auto'" in info.value.message and info.value.param == "response_format"


def test_a_schema_that_cannot_be_enforced_is_refused_at_its_place() -> None:
    fmt = {"type": "json_schema", "json_schema": {"schema": {"type": "string", "format": "uri"}}}
    with pytest.raises(SchemaNotSupported) as info:
        format_grammar(fmt, "response_format")
    assert info.value.param == "response_format.json_schema.schema"
