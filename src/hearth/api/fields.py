"""Checks shared by the surfaces' request bodies, for pydantic's `Annotated` fields."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import AfterValidator


def one_of(allowed: Collection[str]) -> AfterValidator:
    """A string limited to `allowed` (a message's role): refused as "'x' is not one of
    [...]", which becomes a 400 naming the field."""

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"'{value}' is not one of {sorted(allowed)}")
        return value

    return AfterValidator(check)
