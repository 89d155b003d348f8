"""Structured output: JSON schemas and plain JSON turned into llama.cpp grammars (GBNF).

The schema converter is llama.cpp's own (shipped in llama-cpp-python), which covers most of
JSON Schema but quietly ignores what it cannot express. Every keyword is checked here
first, so a schema the grammar would not enforce is refused by name instead of being
half-honoured.
"""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import SchemaConverter

from hearth.chat.types import Grammar
from hearth.core.errors import InvalidRequest

# Keywords that only describe; they need no enforcement.
_ANNOTATIONS = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment",
    "deprecated", "readOnly", "writeOnly", "strict", "name",
}  # fmt: skip
# Keywords the converter turns into grammar rules.
_ENFORCED = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs",
    "definitions", "minLength", "maxLength", "pattern", "format",
}  # fmt: skip
_FORMATS = {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


class SchemaNotSupported(InvalidRequest):
    """A JSON schema that constrained decoding cannot enforce."""


def _check(schema: Any, where: str, param: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaNotSupported(f"{where} must be a JSON schema object", param=param)
    for key, value in schema.items():
        at = f"{where}.{key}"
        if key in _ANNOTATIONS:
            continue
        if key not in _ENFORCED:
            raise SchemaNotSupported(
                f"JSON schema keyword '{key}' (at {where}) cannot be enforced by "
                "constrained decoding; remove it or express it otherwise",
                param=param,
            )
        if key == "format" and value not in _FORMATS:
            raise SchemaNotSupported(
                f"JSON schema format '{value}' (at {where}) is not supported; supported "
                f"formats: {', '.join(sorted(_FORMATS))}",
                param=param,
            )
        if key == "type":
            types = value if isinstance(value, list) else [value]
            bad = [t for t in types if t not in _TYPES]
            if bad:
                raise SchemaNotSupported(
                    f"unknown JSON schema type {bad[0]!r} at {at}", param=param
                )
        if key in {"properties", "$defs", "definitions"}:
            if not isinstance(value, dict):
                raise SchemaNotSupported(f"{at} must be an object", param=param)
            for name, sub in value.items():
                _check(sub, f"{at}.{name}", param)
        elif key in {"items", "additionalProperties"} and not isinstance(value, bool):
            _check(value, at, param)
        elif key in {"prefixItems", "anyOf", "oneOf", "allOf"}:
            if not isinstance(value, list):
                raise SchemaNotSupported(f"{at} must be a list of schemas", param=param)
            for i, sub in enumerate(value):
                _check(sub, f"{at}[{i}]", param)


class GrammarBuilder:
    """Several JSON schemas as rules of one GBNF grammar (llama.cpp's converter), plus
    rules of the caller's own: a forced tool call wraps each tool's arguments schema."""

    def __init__(self) -> None:
        self._converter = SchemaConverter(
            prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
        )

    def schema(self, schema: dict[str, Any], name: str, param: str) -> str:
        """Adds the rules for `schema` and returns the name of its top rule ("root" for
        the name "")."""
        _check(schema, "schema", param)
        try:
            # refs resolve against this schema alone, whatever it is embedded in
            resolved = self._converter.resolve_refs(schema, name)
            return str(self._converter.visit(resolved, name))
        except Exception as exc:  # the converter's own refusal (a regex it cannot parse, …)
            raise SchemaNotSupported(
                f"the JSON schema cannot be turned into a grammar: {exc}", param=param
            ) from None

    def rule(self, name: str, body: str) -> str:
        return str(self._converter._add_rule(name, body))

    @staticmethod
    def literal(text: str) -> str:
        return json.dumps(text)

    def gbnf(self) -> str:
        return _strict_chars(self._converter.format_grammar())


def schema_grammar(schema: dict[str, Any], param: str = "response_format") -> Grammar:
    """A grammar whose every output is JSON valid against `schema`."""
    builder = GrammarBuilder()
    builder.schema(schema, "", param)  # the converter names an unnamed schema "root"
    return Grammar(builder.gbnf())


# The converter's string characters admit raw control characters, which no JSON parser
# accepts inside a string: keep them to what JSON allows unescaped.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def _strict_chars(grammar: str) -> str:
    return "\n".join(
        _STRICT_CHAR + line[len(_LOOSE_CHAR) :] if line.startswith(_LOOSE_CHAR) else line
        for line in grammar.split("\n")
    )


# Any JSON object. Strings are capped at 256 characters and whitespace at a little, so a
# sampled reply cannot wander off inside one string and hit max_tokens unterminated.
JSON_OBJECT_GBNF = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" char{0,256} "\"" ws
char   ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
number ::= "-"? ([0-9] | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})? ws
ws     ::= | " " | "\n" [ \t]{0,8}
"""


def json_object_grammar() -> Grammar:
    return Grammar(JSON_OBJECT_GBNF)
