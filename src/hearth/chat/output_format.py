"""The OpenAI APIs' output format (Chat Completions' and Assistants' `response_format`,
Responses' `text.format`) as a grammar: checked the same way for all three, naming the
param that is wrong."""

from __future__ import annotations

from typing import Any

from hearth.chat.structured import json_object_grammar, schema_grammar
from hearth.chat.types import Grammar
from hearth.core.errors import InvalidRequest

_TYPES = "'text', 'json_object' or 'json_schema'"


def format_grammar(
    fmt: Any, param: str, schema_at: str = "json_schema.schema", *, auto: bool = False
) -> Grammar | None:
    """None for text, any JSON object for `json_object`, JSON valid against the schema for
    `json_schema`. `schema_at` is where the schema sits in `fmt` (Responses' flat format
    holds it as `schema`); `auto` admits the Assistants API's "auto", which means text."""
    if fmt is None or (auto and fmt == "auto"):
        return None
    if not isinstance(fmt, dict):
        also = "'auto', or " if auto else ""
        raise InvalidRequest(
            f"Invalid value for '{param}': use {also}an object with a 'type' of {_TYPES}.",
            param=param,
        )
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return json_object_grammar()
    if kind != "json_schema":
        raise InvalidRequest(
            f"Invalid value for '{param}.type': use {_TYPES}.", param=f"{param}.type"
        )
    schema: Any = fmt
    where = param
    for key in schema_at.split("."):
        where = f"{where}.{key}"
        schema = schema.get(key)
        if not isinstance(schema, dict):  # the param named is the first one missing
            raise InvalidRequest(
                f"{param} of type 'json_schema' needs '{schema_at}', a JSON schema object.",
                param=where,
            )
    return schema_grammar(schema, param=where)
