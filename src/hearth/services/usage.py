"""Usage accounting: one row per request in the store's usage log, for whom (the key's
name and id, never the key), which model, through which surface, its tokens and how it
went.

`UsageRecorder` is a meter (engine/meter.py): the registry tells it of each request as
its generation or embedding ends, in that request's task, so `principal.current()` and
`principal.surface()` name who asked and how. Recording only appends to a list; a
background task writes the list in batches, every `interval` seconds or as soon as
`batch` rows wait, and once more on close (the app's shutdown). A database fault loses
that one batch, with a warning, and never reaches a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from hearth.core import principal
from hearth.core.errors import Overloaded
from hearth.engine.meter import EmbedReport, RunReport, Status
from hearth.store.usage import Use

log = logging.getLogger(__name__)

INTERVAL = 1.0
BATCH = 500
# Rows held while nothing writes them (before start, or a database slower than the
# requests); past this, new rows are dropped with a warning rather than grow memory.
MAX_PENDING = 100_000


class UsageSink(Protocol):
    async def add(self, uses: Sequence[Use]) -> None: ...


class UsageRecorder:
    def __init__(
        self,
        sink: UsageSink,
        *,
        interval: float = INTERVAL,
        batch: int = BATCH,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.interval = interval
        self.batch = batch
        self.max_pending = max_pending
        self._clock = clock
        self._pending: list[Use] = []
        self._dropped = 0  # rows refused for want of room since the last warning
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    # ---- the meter ---------------------------------------------------------------------

    def refused(self, model: str, error: Overloaded) -> None:
        self._record(model, "refused", 0, 0, 0)

    def finished(self, model: str, report: RunReport) -> None:
        usage = report.usage
        self._record(
            model, report.status, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
        )

    def embedded(self, model: str, report: EmbedReport) -> None:
        self._record(model, report.status, report.tokens, 0, 0)

    def _record(
        self, model: str, status: Status, prompt: int, completion: int, cached: int
    ) -> None:
        if len(self._pending) >= self.max_pending:
            if not self._dropped:
                log.warning("usage is not being written fast enough; dropping records")
            self._dropped += 1
            return
        who = principal.current()
        at = int(self._clock())
        surface = principal.surface()
        self._pending.append(
            Use(at, who.key_id, who.name, model, surface, status, prompt, completion, cached)
        )
        if len(self._pending) >= self.batch:
            self._wake.set()

    # ---- writing -----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Write in the background from now on (on the running loop)."""
        if self._task is None:
            self._closing = False
            self._wake = asyncio.Event()  # on this loop (an app may be started again)
            self._task = asyncio.create_task(self._run(), name="usage writer")

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every row waiting, a batch per transaction."""
        while self._pending:
            rows = self._pending[: self.batch]
            del self._pending[: self.batch]
            if self._dropped:
                log.warning("%d usage records were dropped", self._dropped)
                self._dropped = 0
            try:
                await self.sink.add(rows)
            except Exception as exc:
                # Losing one batch of accounting beats holding (or failing) requests.
                log.warning("could not write the usage of %d requests: %s", len(rows), exc)

    async def close(self) -> None:
        """Stop the writer after it has written everything recorded so far."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        await self.flush()
