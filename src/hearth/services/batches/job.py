"""One batch running on this server: its pending requests taken from the store a few at
a time (at most `concurrency` at once), each run and its result saved as it ends.

How it ends: every request has a result and the batch is `ended`. Cancelled by its
client, the requests running are stopped and saved `canceled` (the store canceled the
pending ones). Its key revoked, the running and pending ones are `errored` with that
reason. At shutdown the running ones are `errored` (cut off by the stop) and the pending
ones stay for the next server to run (the service adopts them on start). Past
`expires_at`, the pending ones are `expired`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hearth.services.batches.objects import CANCELED, EXPIRED, errored
from hearth.services.jobs import Job
from hearth.store.batches import Batches

log = logging.getLogger(__name__)

Result = dict[str, Any]
RunOne = Callable[[dict[str, Any]], Awaitable[Result]]

CUT_OFF = errored(
    "api_error",
    "The server stopped (it was shut down, restarted or crashed) while this request ran; "
    "it was not run again.",
)
REVOKED = errored(
    "authentication_error", "The API key that created this batch was revoked or has expired."
)
INTERNAL = errored("api_error", "The server had an error while processing this request.")


class BatchJob(Job[None]):
    kind = "message batch"
    STOPPED = CUT_OFF
    REVOKED = REVOKED
    INTERNAL = INTERNAL

    def __init__(
        self,
        batch_id: str,
        expires_at: float,
        batches: Batches,
        run: RunOne,
        cap: Callable[[str], int],
    ) -> None:
        """`cap(model)`: how many requests for that model may run at once."""
        super().__init__(batch_id)
        self.expires_at = expires_at
        self.batches = batches
        self._run = run
        self._cap = cap
        self.concurrency = 1  # until the first request names its model
        self._inflight: dict[asyncio.Task[None], int] = {}  # each running request's seq
        self._ended = False

    @property
    def decided(self) -> bool:
        return self._ended

    async def work(self) -> None:
        try:
            await self._drive()
        finally:
            await self._stop_inflight()
        self._ended = True
        await self.batches.end_if_done(self.key, time.time())

    async def _drive(self) -> None:
        while True:
            if time.time() >= self.expires_at:
                await self.batches.close_open(self.key, EXPIRED)
            room = self.concurrency - len(self._inflight)
            taken = await self.batches.take(self.key, room) if room > 0 else []
            for row in taken:
                task = asyncio.create_task(self._one(row.seq, row.params))
                self._inflight[task] = row.seq
                self.concurrency = max(1, self._cap(str(row.params.get("model", ""))))
            if taken and len(self._inflight) < self.concurrency:
                continue  # room for more (the first request named its model's slots)
            if not self._inflight:
                return
            left = self.expires_at - time.time()
            done, _ = await asyncio.wait(
                self._inflight,
                timeout=left if left > 0 else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                del self._inflight[task]
                task.result()  # a store fault ends the job (the service adopts it later)

    async def _one(self, seq: int, params: dict[str, Any]) -> None:
        try:
            result = await self._run(params)
        except Exception:  # a bug on one request: that request errs, the batch goes on
            log.exception("a request of message batch %s failed", self.key)
            result = INTERNAL
        # Shielded: a stop landing during the write must not leave it half done.
        await asyncio.shield(self.batches.settle([seq], result))

    async def _stop_inflight(self) -> None:
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    async def end(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Stopped (see Job.execute): cancelled, revoked, shut down or crashed."""
        self._ended = True
        result = CANCELED if status == "cancelled" else (error or INTERNAL)
        try:
            # Every request still running is this job's (a batch runs on one server),
            # also one a stop caught between being taken and being started.
            await self.batches.close_open(self.key, result, running=True)
            if error is REVOKED:
                await self.batches.close_open(self.key, REVOKED)
            if error is not INTERNAL:  # a store fault: the rest is run when adopted
                await self.batches.end_if_done(self.key, time.time())
        except Exception:  # the store failed: the batch goes stale and is adopted later
            log.exception("saving the stop of message batch %s failed", self.key)

    async def crashed(self) -> None:
        with contextlib.suppress(Exception):
            await self.end("failed", INTERNAL)

    async def ended_elsewhere(self) -> None:
        """Not raised for batches: another server's cancel ends the requests it finds."""
