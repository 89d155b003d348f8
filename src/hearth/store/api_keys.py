"""API keys: created, listed, found by digest, revoked. Rows are never deleted, so a
revoked key stays listed (and keeps authentication on; see services/keys.py)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.core.errors import Conflict
from hearth.store.db import Database
from hearth.store.models import ApiKey


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, key: ApiKey) -> None:
        async with self.db.write() as session:
            taken = await session.scalar(select(exists().where(ApiKey.name == key.name)))
            if taken:
                raise Conflict(f"a key named {key.name!r} already exists")
            session.add(key)

    async def all(self) -> list[ApiKey]:
        """Every key, oldest first."""
        async with self.db.read() as session:
            return list((await session.scalars(select(ApiKey).order_by(ApiKey.seq))).all())

    async def by_digest(self, digest: str) -> ApiKey | None:
        async with self.db.read() as session:
            return await session.scalar(select(ApiKey).where(ApiKey.digest == digest))

    async def by_id(self, key_id: str) -> ApiKey | None:
        async with self.db.read() as session:
            return await session.scalar(select(ApiKey).where(ApiKey.id == key_id))

    async def any(self) -> bool:
        """Whether any key was ever created (revoked and expired ones count)."""
        async with self.db.read() as session:
            return bool(await session.scalar(select(exists().select_from(ApiKey))))

    async def find(self, name_or_prefix: str) -> ApiKey | None:
        """The key of that name, else of that prefix."""
        async with self.db.read() as session:
            return await _named(session, name_or_prefix)

    async def unusable(self, ids: Collection[str], now: int) -> list[str]:
        """Which of these keys are revoked or expired by `now` (one query)."""
        gone = or_(
            ApiKey.revoked_at.is_not(None),
            and_(ApiKey.expires_at.is_not(None), ApiKey.expires_at <= now),
        )
        async with self.db.read() as session:
            return list(await session.scalars(select(ApiKey.id).where(ApiKey.id.in_(ids), gone)))

    async def revoke(self, name_or_prefix: str, now: int) -> tuple[ApiKey, bool] | None:
        """Revoke the key of that name, else of that prefix: the key and whether this
        revoked it (revoked earlier, it keeps its first `revoked_at`); None when no key
        matches."""
        async with self.db.write() as session:
            key = await _named(session, name_or_prefix)
            if key is None:
                return None
            if key.revoked_at is not None:
                return key, False
            key.revoked_at = now
            return key, True

    async def touch(self, key_id: str, now: int) -> None:
        """Record a use (callers do so about once a minute, not per request)."""
        async with self.db.write() as session:
            stmt = update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
            await session.execute(stmt)


async def _named(session: AsyncSession, name_or_prefix: str) -> ApiKey | None:
    matches = await session.scalars(
        select(ApiKey).where(or_(ApiKey.name == name_or_prefix, ApiKey.prefix == name_or_prefix))
    )
    found = sorted(matches, key=lambda k: k.name != name_or_prefix)  # a name first
    return found[0] if found else None
