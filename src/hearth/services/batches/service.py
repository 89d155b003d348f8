"""BatchesService: create, retrieve, list, cancel, delete and read the results of
Message Batches; runs them as jobs (services/jobs) and takes over those a dead server
left unfinished.

A batch belongs to the key that created it: other keys but admin ones neither see nor
touch it (404, as for an id that does not exist). Its requests act for that key (their
usage is that key's, its model list applies), also after a restart; a revoked key's
batches stop. Each request runs through `run`, the surface's one-request path, given by
the API layer (the wire conversion lives there): it returns the message or raises the
HearthError the request would have got, which `error_body` renders for the results.
Requests run at batch priority, at most `concurrency` of a batch at once; one refused
for a moment (a rate limit, a full engine) waits and is tried again.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hearth.core import principal
from hearth.core.errors import HearthError, InvalidRequest, NotFound, Overloaded, RateLimited
from hearth.core.ids import new_id, unix_now
from hearth.core.principal import OPEN, STATIC, Principal
from hearth.engine.registry import ModelRegistry
from hearth.services.batches.job import CUT_OFF, REVOKED, BatchJob
from hearth.services.batches.objects import EXPIRES_AFTER, errored, render
from hearth.services.jobs import JobTable
from hearth.services.jobs.owners import Judge
from hearth.services.keys import principal_of, usable
from hearth.services.limits import Lease, Limiter, holding, limited
from hearth.store import Store
from hearth.store.models import MessageBatch
from hearth.store.pages import PageQuery

RunMessage = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
ErrorBody = Callable[[HearthError], dict[str, Any]]
RESULTS_PAGE = 500
# How long one request keeps trying while it is refused for a moment (a rate limit, a
# full engine) before that refusal becomes its result.
RETRY_FOR = 600.0


def _missing(batch_id: str) -> NotFound:
    return NotFound(f"Message batch '{batch_id}' not found.", param="message_batch_id")


class BatchesService:
    def __init__(
        self,
        store: Store,
        run: RunMessage,
        error_body: ErrorBody,
        *,
        concurrency: int,
        limiter: Limiter | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        """`concurrency`: requests of a batch run at once, where `registry` does not say
        how many slots their model has (when loaded, at most that many)."""
        self.store = store
        self.registry = registry
        self.batches = store.batches
        self.run = run
        self.error_body = error_body
        self.concurrency = concurrency
        self.limiter = limiter
        self.jobs: JobTable[BatchJob] = JobTable(
            "message batch",
            self.batches.heartbeat,
            self._adopt,
            recovered="took over",
        )

    async def start(self) -> None:
        """Take over (and go on running) what dead servers left, then keep the heartbeat."""
        await self.jobs.start()

    async def close(self) -> None:
        await self.jobs.close()

    # ---- create -------------------------------------------------------------------------

    async def create(self, requests: list[tuple[str, dict[str, Any]]]) -> MessageBatch:
        """Store a batch of (custom_id, params), checked already, and start running it."""
        who = principal.current()
        now = unix_now()
        row = MessageBatch(
            id=new_id("msgbatch_"),
            created_at=now,
            status="in_progress",
            key_id=who.key_id,
            key_name=who.name,
            expires_at=now + EXPIRES_AFTER,
            owner=self.jobs.owner,
            heartbeat_at=time.time(),
        )
        await self.batches.create(row, requests)
        self._spawn(row)
        return row

    def _spawn(self, row: MessageBatch) -> None:
        """Its job, acting for the current principal; no request's lease rides along (each
        of its requests gets its own)."""
        job = BatchJob(row.id, row.expires_at, self.batches, self._run_one, self._cap)
        with holding(None):
            self.jobs.spawn(job)

    def _cap(self, model: str) -> int:
        """At most the model's slots: a batch never holds more than there are, so its
        requests do not queue in the engine (an interactive request would take a slot
        from them anyway)."""
        if self.registry is None:
            return self.concurrency
        try:
            name = self.registry.resolve(model)
        except HearthError:  # the request errs on its own
            return self.concurrency
        for status in self.registry.status():
            if status.name == name and status.stats and status.stats.get("slots"):
                return min(self.concurrency, status.stats["slots"])
        return self.concurrency

    async def _run_one(self, params: dict[str, Any]) -> dict[str, Any]:
        """One request's result: its message, or the error it would have got."""
        who = principal.current()
        give_up = time.monotonic() + RETRY_FOR
        while True:
            lease = Lease(self.limiter, who) if self.limiter and limited(who) else None
            try:
                with holding(lease):
                    message = await self.run(params)
                return {"type": "succeeded", "message": message}
            except (RateLimited, Overloaded) as err:  # for a moment: wait, then again
                wait = err.retry_after or 1.0
                if time.monotonic() + wait > give_up:
                    return {"type": "errored", "error": self.error_body(err)}
                await asyncio.sleep(wait)
            except HearthError as err:
                return {"type": "errored", "error": self.error_body(err)}
            finally:
                if lease is not None:
                    await lease.release()

    # ---- after a restart ----------------------------------------------------------------

    async def _adopt(self, judge: Judge) -> list[str]:
        """Take over the unfinished batches of dead servers: what was running there is
        errored (cut off), the rest runs here, for the key that created each."""
        ids = await self.batches.adopt_orphans(judge, self.jobs.owner, time.time(), CUT_OFF)
        for batch_id in ids:
            row = await self.batches.get(batch_id)
            if row is None or self.jobs.get(batch_id) is not None:
                continue
            who = await self._creator(row)
            if who is None:  # its key was revoked or has expired meanwhile
                await self.batches.close_open(batch_id, REVOKED)
                await self.batches.end_if_done(batch_id, time.time())
                continue
            contextvars.copy_context().run(self._spawn_as, who, row)
        return ids

    def _spawn_as(self, who: Principal, row: MessageBatch) -> None:
        principal.act_as(who, "anthropic")
        self._spawn(row)

    async def _creator(self, row: MessageBatch) -> Principal | None:
        if row.key_id is None:
            return STATIC if row.key_name == STATIC.name else OPEN
        key = await self.store.api_keys.by_id(row.key_id)
        if key is None or not usable(key, time.time()):
            return None
        return principal_of(key)

    # ---- read ---------------------------------------------------------------------------

    async def _row(self, batch_id: str) -> MessageBatch:
        """The batch, if the current key may see it (its own, or any for an admin)."""
        row = await self.batches.get(batch_id)
        who = principal.current()
        if row is None or not (who.admin or row.key_id == who.key_id):
            raise _missing(batch_id)
        return row

    async def retrieve(self, batch_id: str, results_url: str) -> dict[str, Any]:
        row = await self._row(batch_id)
        counts = await self.batches.counts([row.id])
        return render(row, counts[row.id], results_url)

    async def list(self, query: PageQuery, results_url: Callable[[str], str]) -> dict[str, Any]:
        who = principal.current()
        page = await self.batches.page(query, key_id=None if who.admin else who.key_id or "")
        counts = await self.batches.counts([b.id for b in page.data])
        data = [render(b, counts[b.id], results_url(b.id)) for b in page.data]
        return {
            "data": data,
            "has_more": page.has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    async def results(self, batch_id: str) -> AsyncIterator[bytes]:
        """The results file, one JSON line per request in order. Checks before returning
        the iterator: an unknown batch is a 404, one still processing a 400."""
        row = await self._row(batch_id)
        if row.status != "ended":
            raise InvalidRequest(
                f"Message batch '{batch_id}' is still {row.status}: its results are available "
                "once its processing_status is 'ended'.",
                param="message_batch_id",
            )
        return self._lines(batch_id)

    async def _lines(self, batch_id: str) -> AsyncIterator[bytes]:
        after = 0
        while True:
            rows = await self.batches.results(batch_id, after, RESULTS_PAGE)
            if not rows:
                return
            chunk = []
            for seq, custom_id, result in rows:
                after = seq
                line = {"custom_id": custom_id, "result": result or _LOST}
                chunk.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            yield ("\n".join(chunk) + "\n").encode()

    # ---- change -------------------------------------------------------------------------

    async def cancel(self, batch_id: str, results_url: str) -> dict[str, Any]:
        """Requests not started are canceled; running ones are stopped and saved canceled,
        and the batch has ended when this returns (when this server runs it)."""
        await self._row(batch_id)
        started = await self.batches.cancel(batch_id, time.time())
        if not started and (await self._row(batch_id)).status == "ended":
            raise InvalidRequest(
                f"Message batch '{batch_id}' has ended already; there is nothing to cancel.",
                param="message_batch_id",
            )
        job = self.jobs.get(batch_id)
        if job is not None:
            await self.jobs.stop(job, "cancelled")
        else:  # run by another server (its requests end there), or none left running
            await self.batches.end_if_done(batch_id, time.time())
        return await self.retrieve(batch_id, results_url)

    async def delete(self, batch_id: str) -> dict[str, Any]:
        row = await self._row(batch_id)
        if row.status != "ended" or not await self.batches.delete(batch_id):
            raise InvalidRequest(
                f"Message batch '{batch_id}' cannot be deleted while it is {row.status}; "
                "cancel it and wait until it has ended.",
                param="message_batch_id",
            )
        return {"id": batch_id, "type": "message_batch_deleted"}


# A request of an ended batch always has a result; should one not (a row written by hand),
# the file still says something true about it.
_LOST = errored("api_error", "This request has no result.")
