"""/admin/keys: the API keys over HTTP, as `hearth keys` has them on the command line.

    GET  /admin/keys                   every key (never the key itself, nor its digest)
    POST /admin/keys                   create one; the reply carries the key, this once
    GET  /admin/keys/{ref}             one key, by its name or else its prefix
    POST /admin/keys/{ref}/revoke      revoke it: refused at once, and what it has running
                                       (streams, WebSockets) is ended

Revoking is a POST, not a DELETE: the key stays listed (revoked) for the record.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from hearth.api.state import State
from hearth.core.errors import NotFound
from hearth.core.ids import unix_now
from hearth.core.principal import BudgetPeriod
from hearth.services import key_creation
from hearth.store.models import ApiKey

router = APIRouter(prefix="/keys")


def _limit(description: str, top: int = key_creation.MAX_LIMIT) -> Any:
    return Field(None, ge=1, le=top, description=description)


class CreateKey(BaseModel):
    """A new key; a limit left out is unlimited."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=key_creation.MAX_NAME, description="unique")
    rpm: int | None = _limit("requests per minute")
    tpm: int | None = _limit("tokens per minute (prompt and completion)")
    max_concurrent: int | None = _limit("requests at once")
    budget_tokens: int | None = _limit("tokens per budget_period", key_creation.MAX_BUDGET)
    budget_period: BudgetPeriod | None = Field(None, description="with budget_tokens")
    models: list[str] | None = Field(None, description="the models it may use (default: all)")
    expires: str | None = Field(
        None,
        description="refused from then: a date (2027-01-31, 00:00 UTC) or an ISO time",
        examples=["2027-01-31", "2027-01-31T18:00:00+01:00"],
    )
    admin: bool = Field(False, description="may use the admin API")


class KeyInfo(BaseModel):
    """A key as listed: its prefix tells it apart; times are unix seconds."""

    object: Literal["api_key"] = "api_key"
    id: str
    name: str
    prefix: str
    admin: bool
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    budget_tokens: int | None
    budget_period: str | None
    models: list[str] | None
    created_at: int
    last_used_at: int | None
    expires_at: int | None
    revoked_at: int | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "object"}
        return cls.model_validate(fields)


class CreatedKey(KeyInfo):
    key: str = Field(description="the key itself: shown this once, never again")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyInfo]


def _missing(ref: str) -> NotFound:
    return NotFound(f"No API key is named or prefixed {ref!r}.", param="ref")


def _checked_ref(ref: str) -> str:
    if not ref.isprintable():  # no key has such a name, and PostgreSQL refuses a NUL
        raise _missing(ref)
    return ref


@router.get("", response_model=KeyList)
async def list_keys(state: State) -> KeyList:
    return KeyList(data=[KeyInfo.of(row) for row in await state.store.api_keys.all()])


@router.post("", response_model=CreatedKey, status_code=status.HTTP_201_CREATED)
async def create_key(body: CreateKey, state: State) -> CreatedKey:
    spec = key_creation.KeySpec(**body.model_dump())
    key, row = await key_creation.create(state.store.api_keys, spec, time.time())
    return CreatedKey(**KeyInfo.of(row).model_dump(), key=key)


@router.get("/{ref}", response_model=KeyInfo)
async def get_key(ref: str, state: State) -> KeyInfo:
    row = await state.store.api_keys.find(_checked_ref(ref))
    if row is None:
        raise _missing(ref)
    return KeyInfo.of(row)


@router.post("/{ref}/revoke", response_model=KeyInfo)
async def revoke_key(ref: str, state: State) -> KeyInfo:
    found = await state.store.api_keys.revoke(_checked_ref(ref), unix_now())
    if found is None:
        raise _missing(ref)
    row, _ = found
    state.keyring.revoked(row)  # also when revoked before: anything still running ends
    return KeyInfo.of(row)
