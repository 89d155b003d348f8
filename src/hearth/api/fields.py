"""Checks shared by the surfaces' request bodies, for pydantic's `Annotated` fields."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema


class one_of:  # lower case: used like a function, in Annotated[str, one_of(...)]
    """A string limited to `allowed` (a message's role): refused as "'x' is not one of
    [...]", which becomes a 400 naming the field; documented as an enum, so clients and
    the fuzzer see the same limit the server applies."""

    def __init__(self, allowed: Collection[str]) -> None:
        self.allowed = sorted(allowed)

    def _check(self, value: str) -> str:
        if value not in self.allowed:
            raise ValueError(f"'{value}' is not one of {self.allowed}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {**handler(schema), "enum": self.allowed}
