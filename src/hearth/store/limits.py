"""The shared counters of keys with limits (table `rate_limits`, one row per key).

Every check is ONE conditional `UPDATE … WHERE <the limits hold after it> RETURNING`: the
database applies it atomically to the row, so replicas sharing PostgreSQL (which
re-evaluates the condition on the row's newest version when two updates race) or
processes sharing a SQLite file never admit together more than the limits allow, and a
refused attempt changes nothing. There is no read-then-write; the one read (`counters`)
only explains a refusal that already happened.

The maths are GCRA's (services/limits.py): a take of cost c against a limit of L per
`window` seconds moves the theoretical arrival time `tat` to max(tat, now) + c·window/L,
and is allowed when that is at most now + window (a burst of L from rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hearth.store.db import Database
from hearth.store.models import RateLimit


@dataclass(frozen=True, slots=True)
class Counters:
    """A key's row as an update left it."""

    requests_tat: float = 0.0
    tokens_tat: float = 0.0
    budget_start: int = 0
    budget_used: int = 0

    def used_in(self, period_start: int) -> int:
        """Tokens of the budget spent in the period starting then (an older row's: none)."""
        return self.budget_used if self.budget_start == period_start else 0


@dataclass(frozen=True, slots=True)
class Take:
    """One update of a key's counters. `requests` / `tokens`: seconds to add to that
    arrival time (cost × window / limit), None to leave it. `spend`: tokens added to the
    budget of the period starting at `period_start` (None: the key has no budget).
    With `check`, the update happens only if the arrival times stay within `window` of
    now and the budget has `need` tokens left of `budget`; without, it is a charge for
    what was already used, always applied."""

    now: float
    window: float
    requests: float | None = None
    tokens: float | None = None
    period_start: int | None = None
    spend: int = 0
    need: int = 0
    budget: int | None = None
    check: bool = True


def _later(column: Any, now: float) -> ColumnElement[float]:
    """GREATEST(column, now), spelt so that SQLite and PostgreSQL both run it."""
    return case((column > now, column), else_=now)


_RETURNED = (
    RateLimit.requests_tat,
    RateLimit.tokens_tat,
    RateLimit.budget_start,
    RateLimit.budget_used,
)


class RateLimits:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: set[str] = set()  # keys whose row this process knows exists

    async def take(self, key_id: str, take: Take) -> Counters | None:
        """Apply `take` atomically; the counters after it, or None when it was refused
        (and nothing changed)."""
        rl = RateLimit
        values: dict[Any, Any] = {}
        holds: list[ColumnElement[bool]] = []
        if take.requests is not None:
            values[rl.requests_tat] = _later(rl.requests_tat, take.now) + take.requests
            holds.append(values[rl.requests_tat] <= take.now + take.window)
        if take.tokens is not None:
            values[rl.tokens_tat] = _later(rl.tokens_tat, take.now) + take.tokens
            holds.append(values[rl.tokens_tat] <= take.now + take.window)
        if take.period_start is not None:
            used = case((rl.budget_start == take.period_start, rl.budget_used), else_=0)
            values[rl.budget_start] = take.period_start
            values[rl.budget_used] = used + take.spend
            if take.budget is not None:
                holds.append(used + take.need <= take.budget)
        async with self.db.write() as session:
            if key_id not in self._rows:
                await session.execute(self._insert_row(key_id))
            if values:
                where = [rl.key_id == key_id, *(holds if take.check else ())]
                stmt = update(rl).where(*where).values(values).returning(*_RETURNED)
            else:
                stmt = select(*_RETURNED).where(rl.key_id == key_id)
            row = (await session.execute(stmt)).first()
        self._rows.add(key_id)
        return None if row is None else Counters(*row)

    async def counters(self, key_id: str) -> Counters:
        async with self.db.read() as session:
            row = (
                await session.execute(select(*_RETURNED).where(RateLimit.key_id == key_id))
            ).first()
        return Counters() if row is None else Counters(*row)

    def _insert_row(self, key_id: str) -> Any:
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        fresh = {"requests_tat": 0.0, "tokens_tat": 0.0, "budget_start": 0, "budget_used": 0}
        return insert(RateLimit).values(key_id=key_id, **fresh).on_conflict_do_nothing()
