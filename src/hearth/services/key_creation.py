"""Making a new API key: the checks and the row that `hearth keys create` and
POST /admin/keys share, so both refuse the same input with the same words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id, unix_now
from hearth.core.principal import BudgetPeriod
from hearth.services.keys import new_key
from hearth.store.api_keys import ApiKeys
from hearth.store.models import ApiKey

MAX_NAME = 128  # the column's width
MAX_LIMIT = 2**31 - 1  # the limits' columns; the budget's is 64-bit
MAX_BUDGET = 2**63 - 1


@dataclass(frozen=True)
class KeySpec:
    """What a new key may do; None is unlimited (or every model, or never expires)."""

    name: str
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    budget_tokens: int | None = None
    budget_period: str | None = None
    models: list[str] | None = None
    expires: str | None = None  # 2027-01-31 (00:00 UTC) or an ISO time
    admin: bool = False


def expiry(text: str | None, now: float) -> int | None:
    """The unix second an `expires` value stands for; it must be in the future."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"expires {text!r} is not a date (2027-01-31) or ISO time", param="expires"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.timestamp() <= now:
        raise InvalidRequest(f"expires {text!r} is in the past", param="expires")
    return int(when.timestamp())


def models_list(text: str | None) -> list[str] | None:
    """`a, b` → ["a", "b"]; nothing named → None (every model)."""
    return [m.strip() for m in (text or "").split(",") if m.strip()] or None


def _checked(spec: KeySpec) -> None:
    if not spec.name.strip() or len(spec.name) > MAX_NAME or not spec.name.isprintable():
        raise InvalidRequest(f"name must be 1 to {MAX_NAME} printable characters", param="name")
    for field in ("rpm", "tpm", "max_concurrent", "budget_tokens"):
        value = getattr(spec, field)
        top = MAX_BUDGET if field == "budget_tokens" else MAX_LIMIT
        if value is not None and not 1 <= value <= top:
            raise InvalidRequest(f"{field} must be a whole number from 1 to {top}", param=field)
    if (spec.budget_tokens is None) != (spec.budget_period is None):
        raise InvalidRequest("budget_tokens and budget_period go together", param="budget_period")
    if spec.budget_period is not None and spec.budget_period not in get_args(BudgetPeriod):
        raise InvalidRequest("budget_period must be day, week or month", param="budget_period")
    if spec.models is not None and not (
        spec.models and all(m.strip() and m.isprintable() for m in spec.models)
    ):
        raise InvalidRequest(
            "models must name at least one model (leave it out for every model)", param="models"
        )


def build(spec: KeySpec, now: float) -> tuple[str, ApiKey]:
    """(the new key, its row); InvalidRequest for a spec that cannot be a key."""
    _checked(spec)
    expires_at = expiry(spec.expires, now)
    key, prefix, hex_digest = new_key()
    row = ApiKey(
        id=new_id("key_"),
        created_at=unix_now(),
        name=spec.name,
        prefix=prefix,
        digest=hex_digest,
        admin=spec.admin,
        rpm=spec.rpm,
        tpm=spec.tpm,
        max_concurrent=spec.max_concurrent,
        budget_tokens=spec.budget_tokens,
        budget_period=spec.budget_period,
        models=spec.models,
        expires_at=expires_at,
    )
    return key, row


async def create(keys: ApiKeys, spec: KeySpec, now: float) -> tuple[str, ApiKey]:
    """Store a new key: (the key, shown this once, and its row); Conflict for a name
    that is taken."""
    key, row = build(spec, now)
    await keys.add(row)
    return key, row
