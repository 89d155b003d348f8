"""The jobs of one kind that this server runs, by key: spawned, stopped, renewed by a
heartbeat, and all stopped at shutdown; and on start and at each heartbeat, the rows
that dead servers left running failed (owners.py tells who is dead).

The rows live in the store; a table reaches them through two callables: `renew(owner,
now, keys)` (renew the heartbeat of these rows of `owner`) and `fail_orphans(judge)`
(fail the running rows whose owner `judge` finds gone, returning their ids).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from hearth.core import principal
from hearth.core.errors import StoreUnavailable, Unauthorized
from hearth.services.jobs.job import Job
from hearth.services.jobs.owners import HEARTBEAT_EVERY, Judge, orphan_judge, this_process
from hearth.services.key_watch import KeyWatch

log = logging.getLogger(__name__)

J = TypeVar("J", bound=Job[Any])
Renew = Callable[[str, float, list[str]], Awaitable[None]]
FailOrphans = Callable[[Judge], Awaitable[list[str]]]


class JobTable(Generic[J]):
    def __init__(
        self,
        kind: str,
        renew: Renew,
        fail_orphans: FailOrphans,
        owner: str | None = None,
        chores: Callable[[], Awaitable[None]] | None = None,
        recovered: str = "marked failed",
    ) -> None:
        """`chores`, when given, run at each heartbeat after the sweep. `recovered` says
        in the log what `fail_orphans` did to dead servers' rows."""
        self.kind = kind
        self.recovered = recovered
        self.owner = owner or this_process()
        self._renew = renew
        self._fail_orphans = fail_orphans
        self._chores = chores
        self._jobs: dict[str, J] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        # Told what each database key has running, so that a revoke stops its jobs too.
        self.watch: KeyWatch | None = None
        self._stopping: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs

    def get(self, key: str) -> J | None:
        return self._jobs.get(key)

    def jobs(self) -> list[J]:
        return list(self._jobs.values())

    # ---- one job ------------------------------------------------------------------------

    def spawn(self, job: J) -> J:
        """Run a job for the key of the request that spawns it (its task inherits it)."""
        job.task = asyncio.create_task(job.execute(), name=f"{self.kind} {job.key}")
        self._jobs[job.key] = job
        job.task.add_done_callback(lambda _: self._forget(job))
        key_id = principal.current().key_id
        if self.watch is not None and key_id is not None:
            watch = self.watch

            def revoked(err: Unauthorized) -> None:
                stopping = asyncio.create_task(self.stop(job, "revoked"))
                self._stopping.add(stopping)
                stopping.add_done_callback(self._stopping.discard)

            watch.add(key_id, revoked)
            job.task.add_done_callback(lambda _: watch.discard(key_id, revoked))
        return job

    def _forget(self, job: J) -> None:
        # Only this job: its key may have its next job by now (an assistant run that
        # paused for tool outputs gets a new one when they come).
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]

    async def stop(self, job: J, reason: str = "cancelled") -> None:
        """Stop a job at its next step and wait until its ending is saved. A job whose
        ending is decided is saving it already: it is let finish (a cancel would cut that
        save short, and the store and the stream would tell different endings)."""
        # The first stop's reason holds, and only it cancels: a second cancel could land
        # in the ending the first one brought about.
        if not job.decided and job.cancel_reason is None:
            job.cancel_reason = reason
            # A task that has not begun would die unseen: it sees the reason as it begins.
            if job.started and job.task is not None:
                job.task.cancel()
        await job.done.wait()

    # ---- the server's life --------------------------------------------------------------

    async def start(self) -> None:
        """Fail what dead servers left running, then keep this one's heartbeat going."""
        await self.recover()
        self._heartbeat = asyncio.create_task(self._keep_beating(), name=f"{self.kind} heartbeat")

    async def recover(self) -> list[str]:
        ids = await self._fail_orphans(orphan_judge(time.time()))
        if ids:
            log.warning(
                "%s %d unfinished %s(s): %s", self.recovered, len(ids), self.kind, ", ".join(ids)
            )
        return ids

    async def beat(self) -> None:
        """Renew the heartbeat of the rows with a live job (one whose job died without
        saving its end goes stale, and is failed like a dead server's), then sweep."""
        if self._jobs:  # a job leaves the table as its task ends
            await self._renew(self.owner, time.time(), list(self._jobs))
        await self.recover()
        if self._chores is not None:
            await self._chores()

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            try:
                await self.beat()
            except StoreUnavailable:  # the database is away for a moment: try next beat
                log.warning("%s heartbeat skipped: the database is unavailable", self.kind)
            except Exception:
                log.exception("%s heartbeat failed", self.kind)

    async def close(self) -> None:
        """At shutdown: stop every job at once, each saved as failed (STOPPED)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await asyncio.gather(*(self.stop(job, "shutdown") for job in self.jobs()))
