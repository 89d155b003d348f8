"""The Assistants API's objects: assistants, and threads with their messages, runs and
run steps. Deleting a thread deletes everything under it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, select, update

from hearth.store import jobs
from hearth.store.db import Database
from hearth.store.models import Run, RunStep, Thread, ThreadMessage
from hearth.store.pages import Page, PageQuery, owned, paginate
from hearth.store.tenants import visible

M = TypeVar("M")

# A thread takes no new message and no second run while one of its runs is in these.
OPEN_RUN = ("queued", "in_progress", "requires_action", "cancelling")
# What a server process is executing (and its heartbeat covers).
EXECUTING = ("queued", "in_progress", "cancelling")


class Rows(Generic[M]):
    """One table of objects with `seq`, `id` and owner columns: the plain operations."""

    def __init__(self, db: Database, model: type[M]) -> None:
        self.db = db
        self.model: Any = model

    async def add(self, *rows: M) -> None:
        async with self.db.write() as session:
            session.add_all(rows)

    async def get(self, row_id: str, **owner: Any) -> M | None:
        async with self.db.read() as session:
            return await session.scalar(owned(self.model, id=row_id, **owner))

    async def page(self, query: PageQuery, **owner: Any) -> Page[M]:
        async with self.db.read() as session:
            return await paginate(session, owned(self.model, **owner), self.model, query)

    async def all(self, **owner: Any) -> list[M]:
        """Every row of the owner, oldest first."""
        async with self.db.read() as session:
            stmt = owned(self.model, **owner).order_by(self.model.seq)
            return list((await session.scalars(stmt)).all())

    async def update(
        self, row_id: str, only_if: Collection[str] | None = None, **values: Any
    ) -> bool:
        """Set columns of one row; with `only_if`, only while its status is one of those
        (a late writer never undoes a cancel or a sweep). False when nothing changed."""
        stmt = update(self.model).where(self.model.id == row_id, visible(self.model))
        if only_if is not None:
            stmt = stmt.where(self.model.status.in_(only_if))
        async with self.db.write() as session:
            result = await session.execute(stmt.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete(self, row_id: str, **owner: Any) -> bool:
        stmt = delete(self.model).where(self.model.id == row_id, visible(self.model))
        for column, value in owner.items():
            stmt = stmt.where(getattr(self.model, column) == value)
        async with self.db.write() as session:
            result = await session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]


class Threads(Rows[Thread]):
    def __init__(self, db: Database) -> None:
        super().__init__(db, Thread)
        self.messages = Rows(db, ThreadMessage)
        self.runs = Rows(db, Run)
        self.steps = Rows(db, RunStep)

    async def create(self, thread: Thread, messages: list[ThreadMessage]) -> None:
        async with self.db.write() as session:
            session.add(thread)
            await session.flush()
            session.add_all(messages)

    async def delete(self, row_id: str, **owner: Any) -> bool:
        async with self.db.write() as session:
            if await session.scalar(owned(Thread, only=Thread.seq, id=row_id)) is None:
                return False
            # Children first: SQLite only cascades with its foreign_keys pragma on.
            for model in (RunStep, Run, ThreadMessage):
                await session.execute(delete(model).where(model.thread_id == row_id))
            result = await session.execute(delete(Thread).where(Thread.id == row_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_unless_open_run(
        self, thread_id: str, rows: list[ThreadMessage | Run]
    ) -> str | None:
        """Add messages and a run to a thread, in order, unless a run of the thread is
        open; the open run's id when one is (nothing added). The thread's row lock
        (PostgreSQL) keeps two concurrent callers from both seeing none; SQLite has one
        writer."""
        async with self.db.write() as session:
            await session.scalar(select(Thread.seq).where(Thread.id == thread_id).with_for_update())
            blocking = await session.scalar(
                select(Run.id).where(Run.thread_id == thread_id, Run.status.in_(OPEN_RUN))
            )
            if blocking is None:
                for row in rows:  # one by one, so their `seq` keeps their order
                    session.add(row)
                    await session.flush()
        return blocking

    async def awaiting_tools(self, thread_id: str | None = None) -> list[Run]:
        """Runs paused for tool outputs: of one thread, or of every thread."""
        stmt = select(Run).where(Run.status == "requires_action")
        if thread_id is not None:
            stmt = stmt.where(Run.thread_id == thread_id)
        async with self.db.read() as session:
            return list((await session.scalars(stmt)).all())

    async def heartbeat(self, owner: str, now: float, running: Collection[str]) -> None:
        await jobs.heartbeat(self.db, Run, EXECUTING, owner, now, running)

    async def fail_orphans(
        self, is_orphan: Callable[[str | None, float | None], bool], fail: Callable[[Run], None]
    ) -> list[str]:
        return await jobs.fail_orphans(self.db, Run, EXECUTING, is_orphan, fail)
