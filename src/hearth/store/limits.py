"""The shared counters of keys with limits (table `rate_limits`, one row per key).

Every check is ONE conditional `UPDATE … WHERE <the limits hold after it> RETURNING`: the
database applies it atomically to the row, so replicas sharing PostgreSQL (which
re-evaluates the condition on the row's newest version when two updates race) or
processes sharing a SQLite file never admit together more than the limits allow, and a
refused attempt changes nothing. There is no read-then-write; the one read (`counters`)
only explains a refusal that already happened.

Concurrent requests are rows of `limit_holds`, one per key and server process: a hold
is a conditional `UPDATE` of the process's own row that passes only while the live rows
of the key (heartbeat not stale) hold fewer than the limit. It runs in the same
transaction as the key's counters, after the update that locks the key's row, so two
replicas' holds on one key follow each other and the second sees the first's.

The maths are GCRA's (services/limits.py): a take of cost c against a limit of L per
`window` seconds moves the theoretical arrival time `tat` to max(tat, now) + c·window/L,
and is allowed when that is at most now + window (a burst of L from rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hearth.store.db import Database
from hearth.store.models import LimitHold, RateLimit


class Busy(Exception):
    """A hold was refused: the key runs as many requests as it may (nothing changed)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """One more concurrent request for `owner`, if the key's live holds (heartbeat at or
    after `live_after`) are fewer than `cap`."""

    owner: str
    cap: int
    live_after: float


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
        # The rows this process knows exist (they are never deleted).
        self._rows: set[str] = set()
        self._holders: set[tuple[str, str]] = set()

    async def take(self, key_id: str, take: Take, hold: Hold | None = None) -> Counters | None:
        """Apply `take` (and `hold`) atomically: the counters after it, or None when the
        take was refused; Busy when the hold was. A refusal changes nothing."""
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
            await self._ensure_rows(session, key_id, hold)
            if values:
                where = [rl.key_id == key_id, *(holds if take.check else ())]
                stmt = update(rl).where(*where).values(values).returning(*_RETURNED)
            else:  # locked all the same: the hold below must follow other replicas'
                stmt = select(*_RETURNED).where(rl.key_id == key_id).with_for_update()
            row = (await session.execute(stmt)).first()
            held = row is None or hold is None or await self._hold(session, key_id, hold, take.now)
            if not held:
                raise Busy()  # rolls back the counters' update too
        self._rows.add(key_id)  # committed: the rows exist from now on
        if hold is not None:
            self._holders.add((key_id, hold.owner))
        return None if row is None else Counters(*row)

    async def _ensure_rows(self, session: Any, key_id: str, hold: Hold | None) -> None:
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        if key_id not in self._rows:
            fresh = {"requests_tat": 0.0, "tokens_tat": 0.0, "budget_start": 0, "budget_used": 0}
            stmt = insert(RateLimit).values(key_id=key_id, **fresh).on_conflict_do_nothing()
            await session.execute(stmt)
        if hold is not None and (key_id, hold.owner) not in self._holders:
            row = {"key_id": key_id, "owner": hold.owner, "held": 0, "heartbeat_at": 0.0}
            await session.execute(insert(LimitHold).values(**row).on_conflict_do_nothing())

    async def _hold(self, session: Any, key_id: str, hold: Hold, now: float) -> bool:
        lh = LimitHold
        live = (
            select(func.coalesce(func.sum(lh.held), 0))
            .where(lh.key_id == key_id, lh.heartbeat_at >= hold.live_after)
            .scalar_subquery()
        )
        stmt = (
            update(lh)
            .where(lh.key_id == key_id, lh.owner == hold.owner, live < hold.cap)
            .values(held=lh.held + 1, heartbeat_at=now)
            .returning(lh.held)
        )
        return (await session.execute(stmt)).first() is not None

    async def unhold(self, key_id: str, owner: str, now: float) -> None:
        """One of `owner`'s requests of the key ended."""
        lh = LimitHold
        async with self.db.write() as session:
            await session.execute(
                update(lh)
                .where(lh.key_id == key_id, lh.owner == owner, lh.held > 0)
                .values(held=lh.held - 1, heartbeat_at=now)
            )

    async def heartbeat(self, owner: str, now: float) -> None:
        """`owner` is alive: its holds keep counting."""
        lh = LimitHold
        async with self.db.write() as session:
            await session.execute(
                update(lh).where(lh.owner == owner, lh.held > 0).values(heartbeat_at=now)
            )

    async def counters(self, key_id: str) -> Counters:
        async with self.db.read() as session:
            row = (
                await session.execute(select(*_RETURNED).where(RateLimit.key_id == key_id))
            ).first()
        return Counters() if row is None else Counters(*row)
