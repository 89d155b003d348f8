"""The four forms OpenAI takes for a completion `prompt` or an embedding `input`: a
string, a list of strings, a list of token ids, or a list of token-id lists.

Parsed by hand rather than by a pydantic union, so that a bad item is a 400 naming
exactly where it is (`input[1][2]`), and so that `true` or `2.0` is never taken for a
token id (pydantic's lax mode would turn them into 1 and 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hearth.core.errors import InvalidRequest
from hearth.engine.types import first_unknown_token


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: its text, or its token ids; `param` is where it sits in the request."""

    param: str
    text: str | None = None
    ids: tuple[int, ...] | None = None

    @property
    def value(self) -> str | tuple[int, ...]:
        return self.ids if self.ids is not None else self.text or ""


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    if _is_id(value):
        return "token id"
    if isinstance(value, list):
        return "token array"
    return None


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def parse_prompts(value: str | list[Any], param: str) -> list[Prompt]:
    if isinstance(value, str):
        return [Prompt(param, text=value)]
    if not value:
        raise InvalidRequest(f"'{param}' must not be an empty array.", param=param)
    first = _kind(value[0])
    for i, item in enumerate(value):
        kind = _kind(item)
        where = f"{param}[{i}]"
        if kind is None:
            expected = (
                "a token id (an integer)"
                if first == "token id"
                else ("a string, a token id (an integer) or an array of token ids")
            )
            raise InvalidRequest(f"'{where}' must be {expected}; got {_shown(item)}.", param=where)
        if kind != first:
            raise InvalidRequest(
                f"'{param}' mixes a {first} (at {param}[0]) with a {kind} (at {where}); send "
                "a string, an array of strings, an array of token ids, or an array of "
                "token-id arrays.",
                param=where,
            )
    if first == "string":
        return [Prompt(f"{param}[{i}]", text=item) for i, item in enumerate(value)]
    if first == "token id":
        return [Prompt(param, ids=tuple(value))]
    return [_token_array(item, f"{param}[{i}]") for i, item in enumerate(value)]


def _token_array(items: list[Any], param: str) -> Prompt:
    if not items:
        raise InvalidRequest(f"'{param}' is an empty token array.", param=param)
    for j, item in enumerate(items):
        if not _is_id(item):
            where = f"{param}[{j}]"
            raise InvalidRequest(
                f"'{where}' must be a token id (an integer); got {_shown(item)}.", param=where
            )
    return Prompt(param, ids=tuple(items))


def check_vocabulary(prompts: list[Prompt], vocab_size: int) -> None:
    """Refuse the first token id outside the model's vocabulary, naming where it is."""
    for prompt in prompts:
        if prompt.ids is None:
            continue
        bad = first_unknown_token(prompt.ids, vocab_size)
        if bad is not None:
            where = f"{prompt.param}[{bad}]"
            raise InvalidRequest(
                f"'{where}' is {prompt.ids[bad]}, which is not a token id of this model: "
                f"its ids run from 0 to {vocab_size - 1}.",
                param=where,
            )
