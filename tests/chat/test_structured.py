"""JSON schema keywords as grammar rules: each grammar admits exactly the valid values.

Two independent readings of every grammar: llama.cpp's grammar sampler (over the bundled
model's vocabulary) says whether it lets a given text through, and tests/chat/gbnf.py
enumerates or samples the texts a grammar admits, which `jsonschema` then judges.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction

import jsonschema
import pytest

from hearth.chat.structured import (
    GrammarBuilder,
    SchemaNotSupported,
    json_object_grammar,
    schema_grammar,
)
from hearth.chat.tools import call_grammar
from hearth.chat.types import Tool
from hearth.core.config import bundled_model_path
from hearth.engine.llama_cpp.model import LlamaModel
from tests.chat.gbnf import GBNF, LlamaAcceptor

CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


@pytest.fixture(scope="module")
def llama_accepts() -> Iterator[LlamaAcceptor]:
    path = bundled_model_path()
    assert path is not None
    model = LlamaModel(path)
    yield LlamaAcceptor(model)
    model.close()


def values(schema: dict) -> list[str]:
    """Every JSON text the schema's grammar admits (without the optional trailing space)."""
    return [s for s in GBNF(schema_grammar(schema).gbnf).strings() if not s.endswith(" ")]


def samples(schema: dict, n: int = 300, seed: int = 0) -> list[str]:
    grammar, rng = GBNF(schema_grammar(schema).gbnf), random.Random(seed)
    return [grammar.sample(rng).rstrip(" ") for _ in range(n)]


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=CHECKER)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"minimum": -15, "maximum": 123}, range(-15, 124)),
        ({"exclusiveMinimum": -15, "exclusiveMaximum": 123}, range(-14, 123)),
        ({"minimum": 0, "maximum": 0}, range(0, 1)),
        ({"minimum": -1000, "maximum": -998}, range(-1000, -997)),
        ({"minimum": 95, "maximum": 1005}, range(95, 1006)),
        ({"minimum": 0.5, "exclusiveMaximum": 3.0}, range(1, 3)),
        ({"minimum": 1, "exclusiveMinimum": 3, "maximum": 10, "exclusiveMaximum": 8}, range(4, 8)),
        ({"minimum": -50, "maximum": 300, "multipleOf": 7}, range(-49, 301, 7)),
        ({"minimum": 0, "maximum": 1000, "multipleOf": 25}, range(0, 1001, 25)),
        ({"minimum": -20, "maximum": 20, "multipleOf": 1.5}, range(-18, 21, 3)),
    ],
)
def test_integer_grammar_admits_exactly_the_range(bounds: dict, expected: range) -> None:
    written = values({"type": "integer", **bounds})
    assert sorted(written, key=int) == [str(i) for i in expected]  # no "-0", no "07"


def test_one_sided_integer_bounds(llama_accepts: LlamaAcceptor) -> None:
    gbnf = schema_grammar({"type": "integer", "minimum": 0}).gbnf
    for text in ["0", "7", "10", "9999999999999999"]:
        assert llama_accepts.accepts(gbnf, text), text
    for text in ["-1", "-0", "01", "1.5", "1e3"]:
        assert not llama_accepts.accepts(gbnf, text), text
    gbnf = schema_grammar({"type": "integer", "exclusiveMaximum": -3}).gbnf
    assert llama_accepts.accepts(gbnf, "-4")
    assert llama_accepts.accepts(gbnf, "-1234567")
    assert not llama_accepts.accepts(gbnf, "-3")
    assert not llama_accepts.accepts(gbnf, "5")


def test_number_multiple_of_admits_exactly_the_multiples() -> None:
    written = values({"type": "number", "minimum": -1, "maximum": 1.5, "multipleOf": 0.25})
    assert sorted(Fraction(Decimal(t)) for t in written) == [Fraction(i, 4) for i in range(-4, 7)]
    assert "-0.00" not in written


@pytest.mark.parametrize(
    "bounds",
    [
        {"minimum": 0.5, "exclusiveMaximum": 2.25},
        {"exclusiveMinimum": -1.125, "maximum": -0.001},
        {"minimum": -3, "maximum": 3},
        {"exclusiveMinimum": 0},
        {"maximum": 1e-7, "minimum": 0},
    ],
)
def test_number_bounds_hold_for_every_sampled_value(
    bounds: dict, llama_accepts: LlamaAcceptor
) -> None:
    schema = {"type": "number", **bounds}
    check = validator(schema)
    texts = samples(schema, 400)
    for text in texts:
        check.validate(json.loads(text))  # as parsed, a float
        value = Fraction(Decimal(text))  # and as written, exactly
        assert value >= Fraction(Decimal(repr(bounds.get("minimum", -1e30)))), text
        assert value <= Fraction(Decimal(repr(bounds.get("maximum", 1e30)))), text
    gbnf = schema_grammar(schema).gbnf
    for text in texts[:5]:
        assert llama_accepts.accepts(gbnf, text), text


def test_number_bounds_at_the_edges(llama_accepts: LlamaAcceptor) -> None:
    gbnf = schema_grammar({"type": "number", "minimum": 0.5, "exclusiveMaximum": 2.25}).gbnf
    for text in ["0.5", "0.50", "1", "2.249999", "2.2"]:
        assert llama_accepts.accepts(gbnf, text), text
    for text in ["0.499999", "0.4", "2.25", "2.250", "3", "-1", "1e0"]:
        assert not llama_accepts.accepts(gbnf, text), text


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": "integer", "minimum": 5, "maximum": 4}, "minimum"),
        ({"type": "number", "exclusiveMinimum": 2, "maximum": 2}, "exclusiveMinimum"),
        ({"type": "integer", "minimum": 1.2, "maximum": 1.8}, "maximum"),
        ({"type": "integer", "minimum": 1, "maximum": 6, "multipleOf": 7}, "multipleOf"),
        ({"type": "integer", "multipleOf": 0}, "multipleOf"),
        ({"type": "integer", "multipleOf": 104729}, "multipleOf"),
        ({"type": "integer", "minimum": "3"}, "minimum"),
        ({"minimum": 3}, "minimum"),
        ({"type": "integer", "enum": [1, 5], "minimum": 3}, "minimum"),
        ({"type": "string", "minLength": 4, "maxLength": 3}, "minLength"),
        ({"type": "string", "pattern": "^a+$", "maxLength": 3}, "maxLength"),
        ({"type": "string", "format": "email", "maxLength": 10}, "maxLength"),
        ({"type": "string", "format": "uri"}, "uri"),
        ({"type": "array", "minItems": 3, "maxItems": 2}, "minItems"),
        ({"type": "array", "prefixItems": [{}, {}], "minItems": 3}, "minItems"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
        ({"type": "string", "format": ["date"]}, "format"),
        ({"type": ["integer", {}]}, "type"),
        ({"type": "integer", "exclusiveMinimum": True}, "exclusiveMinimum"),
        ({"type": "number", "maximum": float("inf")}, "finite"),
        ({"type": "string", "minLength": -1}, "minLength must be a non-negative integer"),
        ({"type": "array", "maxItems": True}, "maxItems must be a non-negative integer"),
        ({"type": "string", "format": "date", "minLength": 11}, "minLength"),
        ({"type": "string", "format": "date", "pattern": "^2"}, "'format' and 'pattern'"),
        ({"type": "string", "pattern": 5}, "pattern must be a string"),
        ({"type": "float"}, "'float'"),
        ({"type": "object", "properties": [1]}, "properties must be an object"),
        ({"anyOf": {"type": "string"}}, "anyOf must be a list of schemas"),
        ({"type": "string", "pattern": "a^b"}, "anchor ^"),
        ({"type": "string", "pattern": "^(a$)"}, "anchor $"),
        ({"type": "string", "pattern": "\\bx"}, "\\b cannot be enforced"),
        ({"type": "string", "pattern": "(a)\\1"}, "\\1 cannot be enforced"),
        ({"type": "string", "pattern": "a\tb"}, "JSON would escape"),
        ({"type": "string", "pattern": "^\\x01$"}, "JSON would escape"),
        ({"type": "object", "properties": {"a": False}, "required": ["a"]}, "false yet required"),
        ({"anyOf": [False, False]}, "every alternative is false"),
        ({"type": "array", "prefixItems": [{}, False]}, "false schema"),
        ({"type": "array", "items": False, "minItems": 1}, "minItems"),
        (3, "must be a JSON schema object"),
    ],
)
def test_what_cannot_be_enforced_is_refused_by_name_and_place(schema: dict, needle: str) -> None:
    wrapped = {"type": "object", "properties": {"a": {"type": "array", "items": schema}}}
    with pytest.raises(SchemaNotSupported) as info:
        schema_grammar(wrapped, param="response_format")
    assert needle in info.value.message
    assert "schema.properties.a.items" in info.value.message
    assert info.value.param == "response_format"


FORMATS = ["date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"]


def test_the_format_checker_checks_every_format() -> None:
    """Without fqdn, isoduration and rfc3339-validator jsonschema passes anything."""
    assert set(FORMATS) <= set(CHECKER.checkers)
    assert not CHECKER.conforms("-bad-.com", "hostname")
    assert not CHECKER.conforms("P1X", "duration")
    assert not CHECKER.conforms("25:00:00Z", "time")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_string_a_format_admits_passes_the_checker(
    fmt: str, llama_accepts: LlamaAcceptor
) -> None:
    schema = {"type": "string", "format": fmt}
    check = validator(schema)
    texts = samples(schema, 1000, seed=FORMATS.index(fmt))
    for text in texts:
        check.validate(json.loads(text))
    assert len(set(texts)) > 500  # a sample of the whole language, not of one corner
    gbnf = schema_grammar(schema).gbnf
    for text in texts[:5]:
        assert llama_accepts.accepts(gbnf, text), text


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        (
            "date",
            ["2024-02-29", "2000-02-29", "2023-12-31"],
            ["2023-02-29", "1900-02-29", "2023-04-31", "0000-01-01"],
        ),
        ("time", ["23:59:59Z", "00:00:00.5+05:30"], ["24:00:00Z", "12:00:00"]),
        ("duration", ["P1Y2M3DT4H5M6S", "PT36H", "P2W"], ["P", "PT", "P1H", "P1Y2W"]),
        ("email", ["a.b+c@example.co.uk"], ["a@b", "@example.com", "a..b@example.com"]),
        ("hostname", ["example.com", "a-b.c9"], ["-a.com", "a-.com", "a..b", "1.2.3.4"]),
        ("ipv4", ["0.0.0.0", "255.255.255.255"], ["256.1.1.1", "01.2.3.4", "1.2.3"]),
        (
            "ipv6",
            ["::", "::1", "fe80::1:2", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::"],
            ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", ":1"],
        ),
    ],
)
def test_formats_at_the_edges(
    fmt: str, good: list[str], bad: list[str], llama_accepts: LlamaAcceptor
) -> None:
    gbnf = schema_grammar({"type": "string", "format": fmt}).gbnf
    for text in good:
        assert CHECKER.conforms(text, fmt), text  # the cases themselves are right
        assert llama_accepts.accepts(gbnf, json.dumps(text)), text
    for text in bad:
        assert not llama_accepts.accepts(gbnf, json.dumps(text)), text


def test_string_lengths(llama_accepts: LlamaAcceptor) -> None:
    gbnf = schema_grammar({"type": "string", "minLength": 2, "maxLength": 4}).gbnf
    for text in ['"ab"', '"abcd"', r'"a\n"', '"é€"']:
        assert llama_accepts.accepts(gbnf, text), text
    for text in ['"a"', '"abcde"', '"a\nb"']:
        assert not llama_accepts.accepts(gbnf, text), text
    # a long maxLength is one repetition, not thousands of nested groups
    assert len(schema_grammar({"type": "string", "maxLength": 5000}).gbnf) < 2000


def test_a_pattern_writes_only_what_json_allows_unescaped(llama_accepts: LlamaAcceptor) -> None:
    for pattern in ["^[^,]{1,8}$", "[ -~]{3}", "a.c|x"]:
        schema = {"type": "string", "pattern": pattern}
        for text in samples(schema, 300):
            value = json.loads(text)  # raises on a raw quote, backslash or control char
            assert re.search(pattern, value), (pattern, value)
    gbnf = schema_grammar({"type": "string", "pattern": "^[^,]{1,8}$"}).gbnf
    assert llama_accepts.accepts(gbnf, '"a;b"')
    assert not llama_accepts.accepts(gbnf, '"a"b"')
    assert not llama_accepts.accepts(gbnf, '"a\tb"')
    assert not llama_accepts.accepts(gbnf, '"a,b"')
    for pattern in ['^a"b$', '^"$', r"^a\\b$"]:  # a quote or backslash JSON must escape
        with pytest.raises(SchemaNotSupported, match="escape"):
            schema_grammar({"type": "string", "pattern": pattern})


@pytest.mark.parametrize("items", [{}, {"items": {}}])
def test_array_item_counts(items: dict, llama_accepts: LlamaAcceptor) -> None:
    gbnf = schema_grammar({"type": "array", "minItems": 1, "maxItems": 2, **items}).gbnf
    assert llama_accepts.accepts(gbnf, '[1, "x"]')
    assert llama_accepts.accepts(gbnf, '[{"a": [null]}]')
    assert not llama_accepts.accepts(gbnf, "[]")
    assert not llama_accepts.accepts(gbnf, "[1,2,3]")


def test_a_list_of_types_keeps_each_types_keywords(llama_accepts: LlamaAcceptor) -> None:
    schema = {"type": ["integer", "string", "null"], "minimum": 3, "maxLength": 1}
    gbnf = schema_grammar(schema).gbnf
    for text in ["3", "17", '"a"', "null"]:
        assert llama_accepts.accepts(gbnf, text), text
    for text in ["2", '"ab"']:
        assert not llama_accepts.accepts(gbnf, text), text


def test_a_pydantic_style_schema_samples_valid() -> None:
    schema = {
        "type": "object",
        "properties": {
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "score": {
                "anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1}, {"type": "null"}]
            },
            "email": {"type": "string", "format": "email"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
            "step": {"type": "integer", "multipleOf": 5, "exclusiveMaximum": 100},
        },
        "required": ["age", "score", "email", "tags", "step"],
        "additionalProperties": False,
    }
    check = validator(schema)
    for text in samples(schema, 300):
        check.validate(json.loads(text))


def test_tool_parameters_are_held_to_their_keywords(llama_accepts: LlamaAcceptor) -> None:
    first = Tool("f", "", _object_of(a={"type": "integer", "minimum": 1, "maximum": 3}))
    second = Tool("h", "", _object_of(a={"type": "number", "multipleOf": 0.5, "maximum": 2}))
    gbnf = call_grammar([first, second], [first, second], 1, "tools")
    call = '<tool_call>\n{{"name": "{}", "arguments": {{"a": {}}}}}\n</tool_call>'
    assert llama_accepts.accepts(gbnf, call.format("f", 3))
    assert not llama_accepts.accepts(gbnf, call.format("f", 4))
    assert llama_accepts.accepts(gbnf, call.format("h", "-1.5"))
    assert not llama_accepts.accepts(gbnf, call.format("h", "-1.25"))
    bad = Tool("g", "", _object_of(a={"type": "integer", "minimum": 2, "exclusiveMaximum": 2}))
    with pytest.raises(SchemaNotSupported) as info:
        call_grammar([bad], [first, bad], 1, "tools")
    assert info.value.param == "tools[1].function.parameters"
    assert "schema.properties.a" in info.value.message


def _object_of(**properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties)}


@pytest.mark.parametrize("pattern", ["^ab$", "ab", "^ab", "ab$", "^(ab)$"])
def test_a_pattern_admits_whole_matches_anchored_or_not(pattern: str) -> None:
    assert values({"type": "string", "pattern": pattern}) == ['"ab"']


@pytest.mark.parametrize(
    ("pattern", "text"), [(r"^v\d\.\d$", "v1.2"), (r"^\$[0-9]$", "$5"), (r"^a\-b$", "a-b")]
)
def test_escaped_punctuation_in_a_pattern_stands_for_itself(
    pattern: str, text: str, llama_accepts: LlamaAcceptor
) -> None:
    """None of these characters needs escaping in JSON."""
    gbnf = schema_grammar({"type": "string", "pattern": pattern}).gbnf
    assert llama_accepts.accepts(gbnf, json.dumps(text))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^a\.{1,2}$", ['"a."', '"a.."']),  # the quantifier is the escape's alone
        (r"^[\.\-]$", ['"-"', '"."']),
        (r"^\x41\u00e9$", ['"Aé"']),
        ("^a$|^b$", ['"a"', '"b"']),  # anchors at the ends of the alternatives of the whole
        ("x|^y", ['"x"', '"y"']),
    ],
)
def test_escapes_and_anchors_in_a_pattern(pattern: str, expected: list[str]) -> None:
    assert sorted(values({"type": "string", "pattern": pattern})) == expected


@pytest.mark.parametrize("pattern", ["(unclosed", "a{2,1}", "\\"])
def test_a_pattern_that_is_no_regular_expression_is_refused(pattern: str) -> None:
    """Neither Python nor ECMA-262 compiles these; a grammar for them admits arbitrary text."""
    with pytest.raises(SchemaNotSupported) as info:
        schema_grammar(_object_of(a={"type": "string", "pattern": pattern}))
    assert "pattern" in info.value.message and "schema.properties.a" in info.value.message


@pytest.mark.parametrize(
    "schema",
    [
        {"type": ["string", "null"], "enum": ["a", None]},
        {"type": ["integer", "string"], "enum": ["a", None]},
        {"type": ["integer", "string"], "const": "a"},
    ],
)
def test_values_beside_a_list_of_types_are_the_only_ones(
    schema: dict, llama_accepts: LlamaAcceptor
) -> None:
    gbnf = schema_grammar(schema).gbnf
    allowed = [json.dumps(v) for v in schema.get("enum", [schema.get("const")])]
    for text in allowed:
        assert llama_accepts.accepts(gbnf, text), text
    for text in ['"b"', "3", "null", '"ab"']:
        assert text in allowed or not llama_accepts.accepts(gbnf, text), text


@pytest.mark.parametrize("schema", [{"type": "string"}, _object_of(s={"type": "string"})])
def test_strings_hold_no_raw_control_characters(schema: dict, llama_accepts: LlamaAcceptor) -> None:
    gbnf = schema_grammar(schema).gbnf
    inside = (lambda s: s) if schema["type"] == "string" else (lambda s: f'{{"s": {s}}}')
    assert llama_accepts.accepts(gbnf, inside(r'"a\tb\n\u0001"'))
    for raw in ["\t", "\n", "\x01", "\x7f"]:
        assert not llama_accepts.accepts(gbnf, inside(f'"a{raw}b"')), repr(raw)


def test_schemas_in_one_grammar_keep_their_own_definitions() -> None:
    """A forced tool call puts every tool's arguments schema in one grammar; two tools
    may well name a definition alike ($defs written by pydantic, say)."""
    builder = GrammarBuilder()

    def by_ref(definition: dict) -> dict:
        return {"$defs": {"V": definition}, "$ref": "#/$defs/V"}

    first = builder.schema(by_ref({"enum": ["x", "y"]}), "args-0", "tools[0]")
    second = builder.schema(by_ref({"enum": [1, 2]}), "args-1", "tools[1]")
    grammar = GBNF(builder.gbnf())
    assert {s.rstrip(" ") for s in grammar.strings(first)} == {'"x"', '"y"'}
    assert {s.rstrip(" ") for s in grammar.strings(second)} == {"1", "2"}


def test_a_definition_is_not_a_property_of_its_name(llama_accepts: LlamaAcceptor) -> None:
    schema = _object_of(V={"type": "string", "maxLength": 3}, w={"$ref": "#/$defs/V"})
    gbnf = schema_grammar({**schema, "$defs": {"V": {"type": "integer"}}}).gbnf
    assert llama_accepts.accepts(gbnf, '{"V": "ab", "w": 3}')
    assert not llama_accepts.accepts(gbnf, '{"V": "ab", "w": "ab"}')


def test_a_schema_serves_again_unchanged() -> None:
    """Tools of a stored assistant come back on every run; the converter rewrites refs in place."""
    tool = Tool("f", "", {**_object_of(a={"$ref": "#/$defs/V"}), "$defs": {"V": {"const": 1}}})
    before = json.dumps(tool.parameters)
    assert call_grammar([tool], [tool], 1, "tools") == call_grammar([tool], [tool], 1, "tools")
    assert json.dumps(tool.parameters) == before


def test_the_json_object_grammar(llama_accepts: LlamaAcceptor) -> None:
    gbnf = json_object_grammar().gbnf
    for text in ["{}", '{"a": [1, -2.5e3, "x", null], "b": {"c": true}}', json.dumps({"s": "é\n"})]:
        assert llama_accepts.accepts(gbnf, text), text
    assert llama_accepts.accepts(gbnf, json.dumps({"s": "x" * 256}))
    assert llama_accepts.accepts(gbnf, json.dumps({"a": 1}, indent=8))
    # strings and whitespace are bounded: a sampled reply cannot wander off in one
    too_long = [json.dumps({"s": "x" * 257}), '{  "a": 1}', json.dumps({"a": 1}, indent=9)]
    for text in ["[1]", '"a"', "{", '{"a": 01}', '{"a": "x\ny"}', *too_long]:
        assert not llama_accepts.accepts(gbnf, text), text


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        (_object_of(a=True), '{"a": [1, {"b": null}]}'),
        ({"type": "array", "items": True}, '[1, "x", {}]'),
        ({"anyOf": [{"type": "integer"}, True]}, '"x"'),
    ],
)
def test_a_true_subschema_admits_any_value(
    schema: dict, text: str, llama_accepts: LlamaAcceptor
) -> None:
    """`true` is a JSON schema (any value), as `_check` lets through."""
    assert llama_accepts.accepts(schema_grammar(schema).gbnf, text)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object", "properties": {"a": False, "b": {"const": 1}}}, ['{"b": 1}', "{}"]),
        ({"anyOf": [False, {"const": 1}]}, ["1"]),
        ({"type": "array", "items": False}, ["[]"]),
        ({"type": "array", "prefixItems": [{"const": 1}], "items": False}, ["[1]"]),
    ],
)
def test_a_false_subschema_admits_nothing(schema: dict, expected: list[str]) -> None:
    written = {json.dumps(json.loads(text)) for text in values(schema)}
    assert sorted(written) == expected


def test_a_reference_to_false_is_refused() -> None:
    with pytest.raises(SchemaNotSupported, match="false"):
        schema_grammar({"$defs": {"V": False}, **_object_of(a={"$ref": "#/$defs/V"})})
