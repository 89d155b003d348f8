"""Work a server process runs on stored objects (background responses, assistant runs):
its owner's heartbeat, and failing what dead owners left running. Every such table has
`id`, `status`, `owner` and `heartbeat_at` columns (see services/jobs/owners.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import select, update

from hearth.store.db import Database


async def heartbeat(
    db: Database,
    model: Any,
    active: Collection[str],
    owner: str,
    now: float,
    running: Collection[str],
) -> None:
    """Say that `owner` still runs these unfinished rows of `model`. Only the ones with a
    live job: a row whose job died without saving its end goes stale, and is failed like
    a dead server's."""
    if not running:
        return
    async with db.write() as session:
        await session.execute(
            update(model)
            .where(model.owner == owner, model.status.in_(active), model.id.in_(list(running)))
            .values(heartbeat_at=now)
        )


async def fail_orphans(
    db: Database,
    model: Any,
    active: Collection[str],
    is_orphan: Callable[[str | None, float | None], bool],
    fail: Callable[[Any], None],
) -> list[str]:
    """Apply `fail(row)` to every row of `model` still in an `active` status whose owner
    is gone, as `is_orphan(owner, heartbeat_at)` judges; returns their ids."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(model.id, model.owner, model.heartbeat_at).where(model.status.in_(active))
            )
        ).all()
    ids = [row.id for row in rows if is_orphan(row.owner, row.heartbeat_at)]
    if not ids:
        return []
    async with db.write() as session:
        stmt = select(model).where(model.id.in_(ids), model.status.in_(active)).with_for_update()
        for row in (await session.scalars(stmt)).all():
            fail(row)
    return ids
