"""The usage log: rows written in batches (services/usage.py), summed by UTC day, key
and model for `hearth keys usage` and GET /admin/usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from sqlalchemy import func, insert, or_, select

from hearth.store.db import Database
from hearth.store.models import ApiKey, UsageRecord

DAY = 86_400
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Use:
    """One request's row (see store.models.UsageRecord)."""

    at: int
    key_id: str | None
    key_name: str
    model: str
    surface: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


@dataclass(frozen=True, slots=True)
class UsageTotal:
    day: date
    key: str  # the key's name
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


class UsageLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, uses: Sequence[Use]) -> None:
        """One transaction for the whole batch."""
        if not uses:
            return
        async with self.db.write() as session:
            await session.execute(insert(UsageRecord), [asdict(u) for u in uses])

    async def totals(self, key: str | None = None, since: date | None = None) -> list[UsageTotal]:
        """Sums by UTC day, key name and model, in that order. `key`: a key's name, or the
        prefix of a database key; `since`: from that day's start (UTC) on."""
        day = (UsageRecord.at // DAY).label("day")
        query = select(
            day,
            UsageRecord.key_name,
            UsageRecord.model,
            func.count(),
            func.sum(UsageRecord.prompt_tokens),
            func.sum(UsageRecord.completion_tokens),
            func.sum(UsageRecord.cached_tokens),
        ).group_by(day, UsageRecord.key_name, UsageRecord.model)
        if key is not None:
            prefixed = select(ApiKey.id).where(ApiKey.prefix == key).scalar_subquery()
            query = query.where(or_(UsageRecord.key_name == key, UsageRecord.key_id == prefixed))
        if since is not None:
            query = query.where(UsageRecord.at >= (since - EPOCH).days * DAY)
        query = query.order_by(day, UsageRecord.key_name, UsageRecord.model)
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        return [
            UsageTotal(EPOCH + timedelta(days=int(d)), k, m, n, int(p), int(c), int(x))
            for d, k, m, n, p, c, x in rows
        ]
