"""Structured output: JSON schemas and plain JSON turned into llama.cpp grammars (GBNF).

The schema converter is llama.cpp's own (shipped in llama-cpp-python), which covers most of
JSON Schema but quietly ignores what it cannot express. Every keyword is checked here
first, so a schema the grammar would not enforce is refused by name instead of being
half-honoured. What the converter lacks (numeric bounds, multipleOf, most string formats,
`true` and `false` schemas) or gets wrong (impossible dates; a pattern's escapes, control
characters and quotes; definitions of one name in two schemas) is written here, in
`_Converter` (rules from numeric.py, formats.py and patterns.py).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from llama_cpp.llama_grammar import (
    INVALID_RULE_CHARS_RE,
    PRIMITIVE_RULES,
    RESERVED_NAMES,
    SchemaConverter,
    _build_repetition,
)

from hearth.chat.formats import FORMATS
from hearth.chat.numeric import NumericError, numeric_rule
from hearth.chat.patterns import CLOSE, OPEN, grammar_regex, json_safe
from hearth.chat.types import Grammar
from hearth.core.errors import InvalidRequest

# Keywords that only describe; they need no enforcement.
_ANNOTATIONS = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment",
    "deprecated", "readOnly", "writeOnly", "strict", "name",
}  # fmt: skip
_NUMERIC = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
_STRING = {"minLength", "maxLength", "pattern", "format"}
_ARRAY = {"items", "prefixItems", "minItems", "maxItems"}
_OBJECT = {"properties", "required", "additionalProperties"}
# Keywords the grammar enforces.
_ENFORCED = {
    "type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions",
    *_NUMERIC, *_STRING, *_ARRAY, *_OBJECT,
}  # fmt: skip
# What each type's values are held to; JSON Schema ignores the others on that type.
_TYPE_KEYWORDS = {
    "integer": _NUMERIC, "number": _NUMERIC, "string": _STRING, "array": _ARRAY,
    "object": _OBJECT,
}  # fmt: skip
_TYPED = _NUMERIC | _STRING | _ARRAY | _OBJECT
# Value keywords the converter drops next to these (it follows only them).
_EXCLUSIVE = ("enum", "const", "$ref", "anyOf", "oneOf", "allOf")
_FORMATS = {*FORMATS, "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


class SchemaNotSupported(InvalidRequest):
    """A JSON schema that constrained decoding cannot enforce."""


def _refuse(message: str, param: str) -> SchemaNotSupported:
    return SchemaNotSupported(message, param=param)


def _count(schema: dict[str, Any], key: str, where: str, param: str) -> int:
    value = schema.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(f"{where}.{key} must be a non-negative integer", param)
    return value


def _check_values(schema: dict[str, Any], where: str, param: str) -> None:
    """The keywords that hold a single value: numbers, strings, arrays."""
    keys = schema.keys() & (_NUMERIC | _STRING | {"minItems", "maxItems"})
    if not keys:
        return
    beside = [k for k in _EXCLUSIVE if k in schema]
    if beside:
        raise _refuse(
            f"JSON schema keyword '{sorted(keys)[0]}' (at {where}) cannot be enforced next "
            f"to '{beside[0]}'; move it into the alternatives or list only allowed values",
            param,
        )
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    numeric = keys & _NUMERIC
    if numeric and not kinds & {"integer", "number"}:
        if None in kinds:
            raise _refuse(
                f"JSON schema keyword '{sorted(numeric)[0]}' (at {where}) needs "
                '"type": "integer" or "number" beside it to be enforced',
                param,
            )
    elif numeric:
        try:  # built once here, to name the keyword and its place when it cannot be
            numeric_rule(
                lambda name, body: name,
                "check",
                {**schema, "type": "integer" if "integer" in kinds else "number"},
            )
        except NumericError as exc:
            raise _refuse(
                f"JSON schema keywords {', '.join(sorted(numeric))} (at {where}) cannot be "
                f"enforced: {exc}",
                param,
            ) from None
    low, high = (_count(schema, k, where, param) for k in ("minLength", "maxLength"))
    if "maxLength" in schema and low > high:
        raise _refuse(f"minLength {low} is above maxLength {high} at {where}", param)
    if "format" in schema and "pattern" in schema:
        raise _refuse(
            f"JSON schema keywords 'format' and 'pattern' together (at {where}) cannot be "
            "enforced; use one of them",
            param,
        )
    if "format" in schema:
        if not isinstance(schema["format"], str) or schema["format"] not in _FORMATS:
            raise _refuse(
                f"JSON schema format {schema['format']!r} (at {where}) is not supported; "
                f"supported formats: {', '.join(sorted(_FORMATS))}",
                param,
            )
        shortest, longest = FORMATS[_format_name(schema["format"])][2]
        if low > shortest or ("maxLength" in schema and high < longest):
            raise _refuse(
                f"JSON schema keyword '{'minLength' if low > shortest else 'maxLength'}' "
                f"(at {where}) cannot be enforced together with a format",
                param,
            )
    if "pattern" in schema and schema.keys() & {"minLength", "maxLength"}:
        raise _refuse(
            f"JSON schema keyword '{sorted(schema.keys() & {'minLength', 'maxLength'})[0]}'"
            f" (at {where}) cannot be enforced together with 'pattern'; "
            "put the length in the pattern",
            param,
        )
    if "pattern" in schema:
        _check_pattern(schema["pattern"], where, param)
    low, high = (_count(schema, k, where, param) for k in ("minItems", "maxItems"))
    if "maxItems" in schema and low > high:
        raise _refuse(f"minItems {low} is above maxItems {high} at {where}", param)
    tuple_items = schema.get("prefixItems", schema.get("items"))
    if isinstance(tuple_items, list) and schema.keys() & {"minItems", "maxItems"}:
        n = len(tuple_items)  # the converter writes exactly the listed items
        if low > n or ("maxItems" in schema and high < n):
            raise _refuse(f"minItems/maxItems (at {where}) contradict the {n} listed items", param)


def _check_pattern(pattern: Any, where: str, param: str) -> None:
    if not isinstance(pattern, str):
        raise _refuse(f"{where}.pattern must be a string", param)
    try:
        re.compile(pattern)
    except re.error as exc:  # the converter would write a grammar for it all the same
        raise _refuse(
            f"{where}.pattern {pattern!r} is not a regular expression: {exc}", param
        ) from None
    try:
        grammar_regex(pattern)
    except ValueError as exc:
        raise _refuse(f"{where}.pattern {pattern!r} cannot be enforced: {exc}", param) from None


def _check_satisfiable(schema: dict[str, Any], where: str, param: str) -> None:
    """A `false` schema admits nothing; refused where the value it holds must be there."""
    properties, required = schema.get("properties"), schema.get("required")
    if isinstance(properties, dict) and isinstance(required, list):
        for name in required:
            if properties.get(name) is False:
                raise _refuse(f"{where}.properties.{name} is false yet required", param)
    for key in ("anyOf", "oneOf"):
        if schema.get(key) and all(sub is False for sub in schema[key]):
            raise _refuse(f"{where}.{key} admits no value: every alternative is false", param)
    for key in ("allOf", "prefixItems", "items"):
        if isinstance(schema.get(key), list) and any(sub is False for sub in schema[key]):
            raise _refuse(f"{where}.{key} holds a false schema, which admits no value", param)
    if (
        schema.get("items") is False
        and "prefixItems" not in schema
        and _count(schema, "minItems", where, param)
    ):
        raise _refuse(f"{where}.items is false, which leaves minItems unreachable", param)


def _check(schema: Any, where: str, param: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise _refuse(f"{where} must be a JSON schema object", param)
    for key, value in schema.items():
        at = f"{where}.{key}"
        if key in _ANNOTATIONS:
            continue
        if key not in _ENFORCED:
            raise _refuse(
                f"JSON schema keyword '{key}' (at {where}) cannot be enforced by "
                "constrained decoding; remove it or express it otherwise",
                param,
            )
        if key == "type":
            types = value if isinstance(value, list) else [value]
            bad = [t for t in types if not isinstance(t, str) or t not in _TYPES]
            if bad:
                raise _refuse(f"unknown JSON schema type {bad[0]!r} at {at}", param)
        if key in {"properties", "$defs", "definitions"}:
            if not isinstance(value, dict):
                raise _refuse(f"{at} must be an object", param)
            for name, sub in value.items():
                _check(sub, f"{at}.{name}", param)
        elif key in {"items", "additionalProperties"} and not isinstance(value, list):
            _check(value, at, param)
        elif key in {"prefixItems", "anyOf", "oneOf", "allOf", "items"}:
            if not isinstance(value, list):
                raise _refuse(f"{at} must be a list of schemas", param)
            for i, sub in enumerate(value):
                _check(sub, f"{at}[{i}]", param)
    _check_satisfiable(schema, where, param)
    _check_values(schema, where, param)


def _format_name(fmt: str) -> str:
    return "uuid" if re.fullmatch(r"uuid[1-5]", fmt) else fmt


def _without_booleans(schema: dict[str, Any]) -> dict[str, Any]:
    """Leaves out the `false` alternatives and optional properties (they admit nothing;
    `_check` refused them where they must be there) and the `true` parts of an allOf."""
    schema = dict(schema)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            schema[key] = [sub for sub in schema[key] if sub is not False]
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: v for k, v in schema["properties"].items() if v is not False}
    if isinstance(schema.get("allOf"), list):
        schema["allOf"] = [sub for sub in schema["allOf"] if sub is not True]
        if not schema["allOf"]:
            del schema["allOf"]
    return schema


class _Converter(SchemaConverter):  # type: ignore[misc]
    """llama.cpp's converter, with the keywords it lacks (schemas already `_check`ed)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._ref_rules: dict[str, str] = {}

    def visit(self, schema: Any, name: str) -> str:
        if schema is True:  # any value
            value = str(self._add_primitive("value", PRIMITIVE_RULES["value"]))
            return value if name else str(self._add_rule("root", value))
        if schema is False:  # where `_check` lets it be: reached by a $ref, or the whole
            raise ValueError("a schema `false` admits no value")
        schema = _without_booleans(schema)
        if "enum" in schema or "const" in schema:
            # the values themselves; the converter would follow a list of types instead
            schema = {k: v for k, v in schema.items() if k != "type"}
        if any(k in schema for k in _EXCLUSIVE):
            return str(super().visit(schema, name))
        rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
        kind = schema.get("type")
        if kind in ("array", None) and schema.get("items") is False:
            if "prefixItems" not in schema:  # no items at all (`_check`ed against minItems)
                return self._add_rule(rule_name, '"[" space "]" space')
            schema = {k: v for k, v in schema.items() if k != "items"}  # none past the listed
        if isinstance(kind, list):
            # The converter keeps only the types of a list; each keeps its own keywords.
            shared = {k: v for k, v in schema.items() if k != "type" and k not in _TYPED}
            return self._add_rule(
                rule_name,
                self._generate_union_rule(
                    name,
                    [
                        {**shared, "type": t}
                        | {k: schema[k] for k in _TYPE_KEYWORDS.get(t, set()) & schema.keys()}
                        for t in kind
                    ],
                ),
            )
        if kind in {"integer", "number"} and schema.keys() & _NUMERIC:
            return self._add_rule(rule_name, numeric_rule(self._add_rule, rule_name, schema))
        if kind in {"string", None} and "format" in schema:
            top, rules, _ = FORMATS[_format_name(schema["format"])]
            for rule, body in rules.items():
                self._add_rule(rule, body)
            return self._add_rule(rule_name, rf'"\"" {top} "\"" space')
        if kind in {"string", None} and "pattern" in schema:
            return self._pattern(schema["pattern"], rule_name)
        if kind == "string" and schema.keys() & {"minLength", "maxLength"}:
            # llama.cpp's own repetition, not the converter's nesting one group per
            # character (thousands deep for a long maxLength)
            char = self._add_primitive("char", PRIMITIVE_RULES["char"])
            most = schema.get("maxLength", "")
            return self._add_rule(
                rule_name, rf'"\"" {char}{{{schema.get("minLength", 0)},{most}}} "\"" space'
            )
        if kind == "array" and schema.get("items", {}) == {} and "prefixItems" not in schema:
            # any items: the converter would drop the bounds (or fail on `"items": {}`)
            value = self._add_primitive("value", PRIMITIVE_RULES["value"])
            body = _build_repetition(
                value, schema.get("minItems", 0), schema.get("maxItems"), '"," space'
            )
            return self._add_rule(rule_name, f'"[" space {body} "]" space')
        return str(super().visit(schema, name))

    def _resolve_ref(self, ref: str) -> str:
        # One rule per ref. The converter names it by the ref's last segment alone and
        # reuses any rule of that name: another schema's definition of the same name (a
        # forced tool call holds every tool's arguments), or a property's.
        rule = self._ref_rules.get(ref)
        if rule is None:
            url, _, path = ref.partition("#")
            base = "-".join(filter(None, [url, path.split("/")[-1]]))
            base = INVALID_RULE_CHARS_RE.sub("-", base)
            rule, i = base or "ref", 0
            taken = self._rules.keys() | RESERVED_NAMES | set(self._ref_rules.values())
            while rule in taken:
                rule, i = f"{base}{i}", i + 1
            self._ref_rules[ref] = rule  # before visiting it: it may refer to itself
            top = str(self.visit(self._refs[ref], rule))
            if top != rule:  # a primitive's name; the name given out must stand for it
                self._rules[rule] = top
        return rule

    def _pattern(self, pattern: str, rule_name: str) -> str:
        before = set(self._rules)
        rule = str(self._visit_pattern(f"^({grammar_regex(pattern)})$", rule_name))
        for name in set(self._rules) - before | {rule}:
            body = self._rules[name]
            if name == rule:  # the JSON quotes around the string are the converter's own
                inner = body[len(OPEN) : -len(CLOSE)]
                assert body == OPEN + inner + CLOSE, body
                self._rules[name] = OPEN + json_safe(inner, pattern) + CLOSE
            else:
                self._rules[name] = json_safe(body, pattern)
        return rule


class GrammarBuilder:
    """Several JSON schemas as rules of one GBNF grammar (llama.cpp's converter), plus
    rules of the caller's own: a forced tool call wraps each tool's arguments schema."""

    def __init__(self) -> None:
        self._converter = _Converter(
            prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
        )

    def schema(self, schema: dict[str, Any], name: str, param: str) -> str:
        """Adds the rules for `schema` and returns the name of its top rule ("root" for
        the name "")."""
        _check(schema, "schema", param)
        schema = copy.deepcopy(schema)  # resolve_refs rewrites the refs in place
        try:
            # refs resolve against this schema alone, whatever it is embedded in
            resolved = self._converter.resolve_refs(schema, name)
            return str(self._converter.visit(resolved, name))
        except SchemaNotSupported:
            raise
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
    fmt = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return Grammar(builder.gbnf(), response_format=fmt)


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
    return Grammar(JSON_OBJECT_GBNF, response_format={"type": "json_object"})
