"""JSON-schema value keywords (bounds, multipleOf, formats, lengths, item counts) enforced
on every surface: sampled at temperature 1 with the real model, each reply validated by
jsonschema with its format checker."""

from __future__ import annotations

import json

import jsonschema
import ollama
import openai
import pydantic
import pytest

from tests.conftest import MODEL

CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _object(**properties: dict) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# One-letter names: fewer tokens to write. Every value has a bounded length, so the
# longest reply each grammar admits fits in MAX_TOKENS (a token is at least a character)
# and every reply ends on its own.
SCHEMAS = {
    "numbers": _object(
        n={"type": "integer", "minimum": 3, "maximum": 250},
        m={"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 10, "multipleOf": 3},
        r={"type": "number", "minimum": -1.5, "exclusiveMaximum": 2.5},
        p={"type": "number", "minimum": 0, "maximum": 10, "multipleOf": 0.25},
        d={
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": 9},
            "minItems": 2,
            "maxItems": 4,
        },
        c={"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        k={"type": "string", "minLength": 2, "maxLength": 8},
    ),
    "network": _object(
        e={"type": "string", "format": "email"},
        h={"type": "string", "format": "hostname"},
        v={"type": "string", "format": "ipv4"},
        w={"type": "string", "format": "ipv6"},
    ),
    "time": _object(
        d={"type": "string", "format": "date"},
        a={"type": "string", "format": "date-time"},
        t={"type": "string", "format": "time"},
        l={"type": "string", "format": "duration"},
        u={"type": "string", "format": "uuid"},
    ),
}
ASK = "Fill in the record as JSON."
MAX_TOKENS = 256


def check(schema: dict, text: str) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=CHECKER)
    validator.validate(json.loads(text))


def test_the_format_checker_checks_every_format() -> None:
    """Without fqdn, isoduration and rfc3339-validator it passes any such string."""
    assert {"hostname", "duration", "time", "date-time", "email", "ipv6"} <= set(CHECKER.checkers)


@pytest.mark.parametrize("name", SCHEMAS)
def test_chat_completions(client: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    for seed in range(2):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": ASK}],
            temperature=1.0,
            seed=seed,
            max_tokens=MAX_TOKENS,
            response_format=fmt,  # type: ignore[arg-type]
        )
        assert reply.choices[0].finish_reason == "stop", (seed, reply.choices[0].message.content)
        check(schema, reply.choices[0].message.content or "")


@pytest.mark.parametrize("name", SCHEMAS)
def test_responses(client: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    r = client.responses.create(  # no seed on this API: a new draw on every run
        model=MODEL,
        input=ASK,
        text={"format": {"type": "json_schema", "name": name, "schema": schema}},
        temperature=1.0,
        max_output_tokens=MAX_TOKENS,
        store=False,
    )
    assert r.status == "completed", r.output_text
    check(schema, r.output_text)


@pytest.mark.parametrize("name", SCHEMAS)
def test_ollama(ollama_client: ollama.Client, name: str) -> None:
    schema = SCHEMAS[name]
    reply = ollama_client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": ASK}],
        format=schema,
        options={"temperature": 1.0, "seed": 2, "num_predict": MAX_TOKENS},
    )
    assert reply.done_reason == "stop", reply.message.content
    check(schema, reply.message.content or "")


class Review(pydantic.BaseModel):
    stars: int = pydantic.Field(ge=1, le=5)
    share: float = pydantic.Field(ge=0, le=1)
    votes: int = pydantic.Field(gt=-3, lt=3)
    label: str = pydantic.Field(min_length=2, max_length=12)


def test_sdk_parse_with_pydantic_bounds(client: openai.OpenAI) -> None:
    """The SDK validates the reply with the model itself: a value out of bounds raises."""
    for seed in range(2):
        parsed = client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "Review a film as JSON."}],
            response_format=Review,
            temperature=1.0,
            seed=seed,
            max_tokens=160,
        )
        review = parsed.choices[0].message.parsed
        assert isinstance(review, Review)
        assert 1 <= review.stars <= 5 and 0 <= review.share <= 1 and -3 < review.votes < 3


BAD = [
    ({"type": "string", "format": "uri"}, "uri"),
    ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
    ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum"),
    ({"type": "integer", "multipleOf": -2}, "multipleOf"),
]


def _nested(schema: dict) -> dict:
    return {"type": "object", "properties": {"field": schema}}


@pytest.mark.parametrize(("schema", "needle"), BAD)
def test_chat_refuses_by_keyword_and_path(client: openai.OpenAI, schema: dict, needle: str) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": _nested(schema)}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": ASK}],
            max_tokens=5,
            response_format=fmt,  # type: ignore[arg-type]
        )
    body = info.value.body
    assert isinstance(body, dict)
    assert needle in body["message"] and "schema.properties.field" in body["message"]
    assert body["param"] == "response_format.json_schema.schema"


@pytest.mark.parametrize(("schema", "needle"), BAD)
def test_responses_refuses_by_keyword_and_path(
    client: openai.OpenAI, schema: dict, needle: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model=MODEL,
            input=ASK,
            text={"format": {"type": "json_schema", "name": "x", "schema": _nested(schema)}},
            max_output_tokens=5,
        )
    body = info.value.body
    assert isinstance(body, dict)
    assert needle in body["message"] and "schema.properties.field" in body["message"]
    assert body["param"] == "text.format.schema"


@pytest.mark.parametrize(("schema", "needle"), BAD)
def test_ollama_refuses_by_keyword_and_path(
    ollama_client: ollama.Client, schema: dict, needle: str
) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.chat(
            model=MODEL,
            messages=[{"role": "user", "content": ASK}],
            format=_nested(schema),
            options={"num_predict": 5},
        )
    assert info.value.status_code == 400
    assert needle in info.value.error and "schema.properties.field" in info.value.error
