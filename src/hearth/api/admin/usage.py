"""GET /admin/usage: the usage log summed by UTC day, key and model (as `hearth keys
usage` prints it)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hearth.api.state import State

router = APIRouter()


class UsageRow(BaseModel):
    day: date = Field(description="The UTC day.")
    key: str = Field(
        description="The key's name; 'static' for an --api-key key, 'open' without keys."
    )
    model: str
    requests: int = Field(description="Requests, whatever their status (cancelled, refused).")
    prompt_tokens: int = Field(description="Prompt tokens, embedded inputs included.")
    completion_tokens: int
    cached_tokens: int = Field(description="Prompt tokens found in the KV cache.")
    total_tokens: int = Field(description="Prompt and completion tokens.")


class UsageReport(BaseModel):
    object: Literal["list"] = "list"
    data: list[UsageRow]


@router.get("/usage", summary="Usage by day, key and model")
async def usage(
    state: State,
    key: Annotated[
        str | None, Query(description="Only this key: its name, or a database key's prefix.")
    ] = None,
    since: Annotated[date | None, Query(description="From this UTC day on (2026-12-01).")] = None,
) -> UsageReport:
    # What this server recorded but has not written yet is written first, so a request
    # that has ended is counted.
    await state.usage.flush()
    totals = await state.store.usage.totals(key, since)
    return UsageReport(
        data=[
            UsageRow(**asdict(t), total_tokens=t.prompt_tokens + t.completion_tokens)
            for t in totals
        ]
    )
