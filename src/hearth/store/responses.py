"""Stored responses: the row, its input items and the text deltas of a running one."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import delete, select, update

from hearth.store import jobs
from hearth.store.db import Database
from hearth.store.models import Response, ResponseDelta, ResponseItem
from hearth.store.pages import Page, PageQuery, owned, paginate

ACTIVE = ("queued", "in_progress")


class Responses:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, row: Response, input_items: list[dict[str, Any]]) -> None:
        async with self.db.write() as session:
            session.add(row)
            await session.flush()
            session.add_all(
                ResponseItem(id=item["id"], response_id=row.id, type=item["type"], data=item)
                for item in input_items
            )

    async def get(self, response_id: str) -> Response | None:
        async with self.db.read() as session:
            return await session.scalar(owned(Response, id=response_id))

    async def update_active(self, response_id: str, **fields: Any) -> bool:
        """Set fields on a response that is still queued or in progress; False when it has
        ended already (cancelled meanwhile, or deleted): a late writer never undoes that."""
        async with self.db.write() as session:
            result = await session.execute(
                update(Response)
                .where(Response.id == response_id, Response.status.in_(ACTIVE))
                .values(**fields)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_deltas(self, response_id: str, deltas: list[Any]) -> bool:
        """Save output steps of a running response; False (nothing saved) once it has
        ended elsewhere: cancelled through another server, or deleted."""
        async with self.db.write() as session:
            status = await session.scalar(
                select(Response.status).where(Response.id == response_id).with_for_update()
            )
            if status not in ACTIVE:
                return False
            session.add(ResponseDelta(response_id=response_id, deltas=deltas))
        return True

    async def deltas(self, response_id: str) -> list[Any]:
        async with self.db.read() as session:
            stmt = owned(ResponseDelta, response_id=response_id).order_by(ResponseDelta.seq)
            return [d for row in (await session.scalars(stmt)).all() for d in row.deltas]

    async def input_items(self, response_id: str, query: PageQuery) -> Page[ResponseItem]:
        async with self.db.read() as session:
            stmt = owned(ResponseItem, response_id=response_id)
            return await paginate(session, stmt, ResponseItem, query)

    async def all_input_items(self, response_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as session:
            stmt = owned(ResponseItem, response_id=response_id).order_by(ResponseItem.seq)
            return [row.data for row in (await session.scalars(stmt)).all()]

    async def delete(self, response_id: str) -> bool:
        async with self.db.write() as session:
            if await session.scalar(owned(Response, only=Response.seq, id=response_id)) is None:
                return False
            for model in (ResponseDelta, ResponseItem):
                await session.execute(delete(model).where(model.response_id == response_id))
            result = await session.execute(delete(Response).where(Response.id == response_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def heartbeat(self, owner: str, now: float, running: Collection[str]) -> None:
        """Say that `owner` still runs these unfinished responses (its live jobs)."""
        await jobs.heartbeat(self.db, Response, ACTIVE, owner, now, running)

    async def fail_orphans(
        self, error: dict[str, Any], is_orphan: Callable[[str | None, float | None], bool]
    ) -> list[str]:
        """Mark failed every queued or running response whose owner is gone, as
        `is_orphan(owner, heartbeat_at)` judges (a crash, a shutdown that could not save
        them); their output so far is kept. Returns their ids."""

        def fail(row: Response) -> None:
            row.status, row.error = "failed", error

        return await jobs.fail_orphans(self.db, Response, ACTIVE, is_orphan, fail)
