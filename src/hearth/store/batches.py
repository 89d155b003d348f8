"""Stored Message Batches: the batch, and each request's params and result, so that a
batch's progress survives a restart. Request statuses: pending (not started), running,
and then its result's type (succeeded, errored, canceled, expired)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from hearth.store import jobs
from hearth.store.db import Database
from hearth.store.models import MessageBatch, MessageBatchRequest
from hearth.store.pages import Page, PageQuery, paginate

ACTIVE = ("in_progress", "canceling")  # a batch whose requests are not all done
OPEN = ("pending", "running")  # a request without a result
COUNTED = ("processing", "succeeded", "errored", "canceled", "expired")
INSERT_CHUNK = 1000


class Batches:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, row: MessageBatch, requests: list[tuple[str, dict[str, Any]]]) -> None:
        """The batch and its requests (custom_id, params), all pending, in one transaction."""
        rows = [
            {"batch_id": row.id, "custom_id": c, "status": "pending", "params": p, "result": None}
            for c, p in requests
        ]
        async with self.db.write() as session:
            session.add(row)
            await session.flush()
            for start in range(0, len(rows), INSERT_CHUNK):
                await session.execute(
                    insert(MessageBatchRequest), rows[start : start + INSERT_CHUNK]
                )

    async def get(self, batch_id: str) -> MessageBatch | None:
        async with self.db.read() as session:
            return await session.scalar(select(MessageBatch).where(MessageBatch.id == batch_id))

    async def counts(self, batch_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """Each batch's request_counts: pending and running requests are `processing`."""
        stmt = (
            select(MessageBatchRequest.batch_id, MessageBatchRequest.status, func.count())
            .where(MessageBatchRequest.batch_id.in_(list(batch_ids)))
            .group_by(MessageBatchRequest.batch_id, MessageBatchRequest.status)
        )
        out = {b: dict.fromkeys(COUNTED, 0) for b in batch_ids}
        async with self.db.read() as session:
            for batch_id, status, n in (await session.execute(stmt)).all():
                out[batch_id]["processing" if status in OPEN else status] += n
        return out

    async def page(self, query: PageQuery, key_id: str | None = None) -> Page[MessageBatch]:
        """Batches newest first (`query`); only those of `key_id` unless it is None."""
        stmt = select(MessageBatch)
        if key_id is not None:
            stmt = stmt.where(MessageBatch.key_id == key_id)
        async with self.db.read() as session:
            return await paginate(session, stmt, MessageBatch, query)

    async def take(self, batch_id: str, limit: int) -> list[MessageBatchRequest]:
        """Up to `limit` pending requests of a batch still in progress, in order, now
        running; none once it is canceling or ended."""
        async with self.db.write() as session:
            status = await session.scalar(
                select(MessageBatch.status).where(MessageBatch.id == batch_id).with_for_update()
            )
            if status != "in_progress" or limit <= 0:
                return []
            stmt = (
                select(MessageBatchRequest)
                .where(
                    MessageBatchRequest.batch_id == batch_id,
                    MessageBatchRequest.status == "pending",
                )
                .order_by(MessageBatchRequest.seq)
                .limit(limit)
                .with_for_update()
            )
            rows = list((await session.scalars(stmt)).all())
            for row in rows:
                row.status = "running"
            return rows

    async def settle(self, seqs: Collection[int], result: dict[str, Any]) -> int:
        """Give these running requests their result; how many were still running."""
        if not seqs:
            return 0
        async with self.db.write() as session:
            done = await session.execute(
                update(MessageBatchRequest)
                .where(
                    MessageBatchRequest.seq.in_(list(seqs)),
                    MessageBatchRequest.status == "running",
                )
                .values(status=result["type"], result=result)
            )
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def close_open(
        self, batch_id: str, result: dict[str, Any], *, running: bool = False
    ) -> int:
        """Give every pending request of a batch (with `running`: every running one
        instead) this result (canceled, expired, errored); how many there were."""
        async with self.db.write() as session:
            done = await session.execute(
                update(MessageBatchRequest)
                .where(
                    MessageBatchRequest.batch_id == batch_id,
                    MessageBatchRequest.status == ("running" if running else "pending"),
                )
                .values(status=result["type"], result=result)
            )
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def cancel(self, batch_id: str, now: float) -> bool:
        """Start cancelling a batch in progress: it is canceling, its pending requests
        canceled. False when it was not in progress."""
        async with self.db.write() as session:
            done = await session.execute(
                update(MessageBatch)
                .where(MessageBatch.id == batch_id, MessageBatch.status == "in_progress")
                .values(status="canceling", cancel_initiated_at=now)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            await session.execute(
                update(MessageBatchRequest)
                .where(
                    MessageBatchRequest.batch_id == batch_id,
                    MessageBatchRequest.status == "pending",
                )
                .values(status="canceled", result={"type": "canceled"})
            )
        return True

    async def end_if_done(self, batch_id: str, now: float) -> bool:
        """End a batch none of whose requests is pending or running; whether it has ended."""
        async with self.db.write() as session:
            row = await session.scalar(
                select(MessageBatch).where(MessageBatch.id == batch_id).with_for_update()
            )
            if row is None or row.status == "ended":
                return True
            left = await session.scalar(
                select(func.count()).where(
                    MessageBatchRequest.batch_id == batch_id,
                    MessageBatchRequest.status.in_(OPEN),
                )
            )
            if left:
                return False
            row.status, row.ended_at = "ended", now
            return True

    async def delete(self, batch_id: str) -> bool:
        """Delete an ended batch with its requests; False when there is no ended one."""
        async with self.db.write() as session:
            ended = await session.scalar(
                select(MessageBatch.id).where(
                    MessageBatch.id == batch_id, MessageBatch.status == "ended"
                )
            )
            if ended is None:
                return False
            await session.execute(
                delete(MessageBatchRequest).where(MessageBatchRequest.batch_id == batch_id)
            )
            await session.execute(delete(MessageBatch).where(MessageBatch.id == batch_id))
        return True

    async def results(
        self, batch_id: str, after_seq: int = 0, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any] | None]]:
        """(seq, custom_id, result) of a batch's requests in order, `limit` after `after_seq`."""
        stmt = (
            select(
                MessageBatchRequest.seq, MessageBatchRequest.custom_id, MessageBatchRequest.result
            )
            .where(MessageBatchRequest.batch_id == batch_id, MessageBatchRequest.seq > after_seq)
            .order_by(MessageBatchRequest.seq)
            .limit(limit)
        )
        async with self.db.read() as session:
            return [(s, c, r) for s, c, r in (await session.execute(stmt)).all()]

    async def heartbeat(self, owner: str, now: float, running: Collection[str]) -> None:
        await jobs.heartbeat(self.db, MessageBatch, ACTIVE, owner, now, running)

    async def adopt_orphans(
        self,
        is_orphan: Callable[[str | None, float | None], bool],
        owner: str,
        now: float,
        cut_off: dict[str, Any],
    ) -> list[str]:
        """Take over the unfinished batches whose server is gone (`is_orphan(owner,
        heartbeat_at)`): their requests that were running when it died get `cut_off` as
        their result, and `owner` runs the rest. Returns their ids."""
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(MessageBatch.id, MessageBatch.owner, MessageBatch.heartbeat_at).where(
                        MessageBatch.status.in_(ACTIVE)
                    )
                )
            ).all()
        ids = [row.id for row in rows if is_orphan(row.owner, row.heartbeat_at)]
        if not ids:
            return []
        async with self.db.write() as session:
            stmt = (
                select(MessageBatch)
                .where(MessageBatch.id.in_(ids), MessageBatch.status.in_(ACTIVE))
                .with_for_update()
            )
            taken = list((await session.scalars(stmt)).all())
            # Judged again under the lock: another replica may have adopted one meanwhile.
            taken = [b for b in taken if is_orphan(b.owner, b.heartbeat_at)]
            for batch in taken:
                batch.owner, batch.heartbeat_at = owner, now
            if taken:
                await session.execute(
                    update(MessageBatchRequest)
                    .where(
                        MessageBatchRequest.batch_id.in_([b.id for b in taken]),
                        MessageBatchRequest.status == "running",
                    )
                    .values(status=cut_off["type"], result=cut_off)
                )
        return [b.id for b in taken]
