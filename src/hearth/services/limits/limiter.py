"""The limits of one server process: admission, background writes, the heartbeat of its
concurrency holds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from hearth.core.principal import Principal
from hearth.services.jobs.owners import HEARTBEAT_EVERY, this_process
from hearth.services.limits.lease import Lease
from hearth.store.limits import RateLimits

log = logging.getLogger(__name__)


class Limiter:
    """The limits of every key, for one server process. `owner` names the process in
    the concurrency holds, as the job tables name it (services/jobs/owners.py); while
    it holds any, it renews their heartbeat every HEARTBEAT_EVERY seconds, so the holds
    of a process that died stop counting within STALE_AFTER."""

    def __init__(self, store: RateLimits, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.owner = this_process()
        self._holds: dict[str, int] = {}  # key id → this process's holds
        self._owed: dict[str, int] = {}  # releases whose write failed: retried
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        self._beating: asyncio.Task[None] | None = None

    async def admit(self, principal: Principal) -> Lease:
        """Admit one request of a limited key, or raise RateLimited / QuotaExceeded."""
        lease = Lease(self, principal)
        await lease.admit()
        return lease

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a write as its own task: a cancelled request does not cut it short."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def write_charges(self, lease: Lease) -> asyncio.Task[None]:
        return self.spawn(lease.flush())

    def count_hold(self, key_id: str, change: int) -> None:
        """Note a hold taken (+1) or freed (-1); holding any, the heartbeat runs."""
        held = self._holds.get(key_id, 0) + change
        if held > 0:
            self._holds[key_id] = held
        else:
            self._holds.pop(key_id, None)
        if self._holds and self._beating is None:
            self._beating = asyncio.create_task(self._beat())

    async def free(self, key_id: str) -> None:
        """Give back one of this process's holds of the key."""
        try:
            await self.store.unhold(key_id, self.owner, self.clock())
        except Exception as exc:  # retried by the heartbeat; the slot stays held till then
            log.warning("could not release a concurrency slot of key %s: %s", key_id, exc)
            self._owed[key_id] = self._owed.get(key_id, 0) + 1
            return
        self.count_hold(key_id, -1)

    async def _beat(self) -> None:
        try:
            while self._holds:
                await asyncio.sleep(HEARTBEAT_EVERY)
                for key_id, owed in list(self._owed.items()):
                    self._owed.pop(key_id)
                    for _ in range(owed):
                        await self.free(key_id)
                try:
                    await self.store.heartbeat(self.owner, self.clock())
                except Exception as exc:  # the next beat tries again
                    log.warning("could not renew the concurrency holds: %s", exc)
        finally:
            self._beating = None

    async def close(self) -> None:
        """Wait for the writes still running (at shutdown, before the store closes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
