"""ResponsesService: create, retrieve, stream, cancel and delete responses; owns the jobs.

The HTTP routes call only this. A job outlives the request
that started it when it runs in the background; at shutdown every job still running is
stopped and saved as failed, and on start any response the store still shows queued or
in progress by a server that is gone (it crashed) is marked failed the same way
(the job table, services/jobs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from hearth.core import principal
from hearth.core.errors import InvalidRequest, NotFound
from hearth.core.ids import new_id, unix_now
from hearth.engine.registry import ModelRegistry
from hearth.services.conversations import ConversationsService
from hearth.services.generation import ModelReply
from hearth.services.items import check_metadata, normalize_input, refuse_known_ids
from hearth.services.jobs import JobTable
from hearth.services.responses.context import Context, admit, chain_turns, conversation_turns
from hearth.services.responses.events import rebuilt
from hearth.services.responses.job import STOPPED, ResponseJob
from hearth.services.responses.objects import ACTIVE, render
from hearth.services.responses.params import ResponseParams
from hearth.store import Store
from hearth.store.models import Response
from hearth.store.pages import PageQuery

POLL_INTERVAL = 0.25


def _not_cancellable(status: str) -> InvalidRequest:
    return InvalidRequest(f"Cannot cancel a response with status '{status}'.", param="response_id")


def _missing(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


class ResponsesService:
    def __init__(
        self,
        store: Store,
        registry: ModelRegistry,
        conversations: ConversationsService,
        flush_interval: float = 0.25,
    ) -> None:
        self.store = store
        self.registry = registry
        self.conversations = conversations
        self.flush_interval = flush_interval
        self.jobs: JobTable[ResponseJob] = JobTable(
            "response",
            store.responses.heartbeat,
            lambda judge: store.responses.fail_orphans(STOPPED, judge),
        )

    async def start(self) -> None:
        """Fail what dead servers left running, then keep this one's heartbeat going."""
        await self.jobs.start()

    async def close(self) -> None:
        await self.jobs.close()

    # ---- create -------------------------------------------------------------------------

    async def create(self, params: ResponseParams) -> ResponseJob:
        """Check the request, rebuild its context and start its job. A foreground request
        is admitted to the engine here (so a full queue or an oversized context is an
        error before anything is stored); a background one queues and returns at once."""
        params.check()
        self.registry.resolve(params.model)
        params.grammar()  # a text.format the grammar cannot enforce is a 400 now
        metadata = check_metadata(params.metadata)
        new_items = normalize_input(params.input)
        if not new_items:
            raise InvalidRequest("'input' must not be empty.", param="input")
        context = Context()
        if params.previous_response_id:
            context.turns = await chain_turns(self.store, params.previous_response_id)
        elif params.conversation:
            items = await self.conversations.context(params.conversation)
            refuse_known_ids(new_items, {item["id"] for item in items}, "input")
            context.turns = conversation_turns(items)
        row = Response(
            id=new_id("resp_"),
            created_at=unix_now(),
            status="queued" if params.background else "in_progress",
            model=params.model,
            background=params.background,
            previous_response_id=params.previous_response_id,
            conversation_id=params.conversation,
            message_id=new_id("msg_"),
            meta=metadata,
            request=params.echoed(),
            output=[],
            owner=self.jobs.owner,
            heartbeat_at=time.time(),
        )

        def start() -> Any:
            return admit(self.registry, params, context, new_items)

        if params.background:
            await self.store.responses.create(row, new_items)
            return self._spawn(row, new_items, params.store, start, None)
        run = await start()
        try:
            if params.store:
                await self.store.responses.create(row, new_items)
        except BaseException:
            await run.aclose()
            raise
        return self._spawn(row, new_items, params.store, None, run)

    def _spawn(
        self, row: Response, items: list[Any], stored: bool, start: Any, run: ModelReply | None
    ) -> ResponseJob:
        store = self.store if stored else None
        job = ResponseJob(row, items, store, self.conversations, self.flush_interval, start, run)
        return self.jobs.spawn(job)

    # ---- read ---------------------------------------------------------------------------

    async def _row(self, response_id: str) -> Response:
        row = await self.store.responses.get(response_id)
        if row is None:
            raise _missing(response_id)
        return row

    def _job(self, response_id: str) -> ResponseJob | None:
        """This server's stored job for the id, if the current key may reach its response
        (store.tenants); the store answers for the rest."""
        job = self.jobs.get(response_id)
        if job is None or job.store is None or not principal.current().owns(job.row.tenant):
            return None
        return job

    async def retrieve(self, response_id: str) -> dict[str, Any]:
        job = self._job(response_id)
        if job is not None:
            return job.snapshot()
        row = await self._row(response_id)
        if row.status in ACTIVE or not row.output:
            # Running elsewhere, or stopped before its output was written: what was saved.
            builder, _ = rebuilt(row, await self.store.responses.deltas(response_id))
            return render(row, output=builder.output())
        return render(row)

    async def stream(
        self, response_id: str, starting_after: int = -1
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of a stored response after `starting_after`: replayed from the store,
        then live until it ends. Checks the id before returning the iterator."""
        await self._row(response_id)
        return self._follow(response_id, starting_after)

    async def _follow(self, response_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        job = self.jobs.get(response_id)
        if job is not None:
            async for event in job.subscribe(after):
                yield event
            return
        # Another process runs it (or it has ended): follow the store.
        while True:
            row = await self.store.responses.get(response_id)
            if row is None:
                return
            _, events = rebuilt(row, await self.store.responses.deltas(response_id))
            for event in events:
                if event["sequence_number"] > after:
                    after = event["sequence_number"]
                    yield event
            if row.status not in ACTIVE:
                return
            await asyncio.sleep(POLL_INTERVAL)

    async def input_items(self, response_id: str, query: PageQuery) -> dict[str, Any]:
        await self._row(response_id)
        page = await self.store.responses.input_items(response_id, query)
        return page.as_list(lambda row: row.data)

    # ---- change -------------------------------------------------------------------------

    async def cancel(self, response_id: str) -> dict[str, Any]:
        row = await self._row(response_id)
        if not row.background:
            raise InvalidRequest(
                "Only background responses can be cancelled; this one was created without "
                "'background': true.",
                param="response_id",
            )
        job = self.jobs.get(response_id)
        # A job of this server decides its ending before the store has it: one that is
        # saving "completed" must not be cancelled (its save would be cut short).
        status = job.row.status if job is not None else row.status
        if status == "cancelled":
            return await self.retrieve(response_id)
        if status not in ACTIVE:
            raise _not_cancellable(status)
        if job is not None:
            await self.stop(job)
            return job.snapshot()
        # Run by another process: end it in the store; its job's late writes are refused.
        if not await self.store.responses.update_active(response_id, status="cancelled"):
            # It ended there first, just now: as if it had ended before this call.
            ended = await self._row(response_id)
            if ended.status != "cancelled":
                raise _not_cancellable(ended.status)
        return await self.retrieve(response_id)

    async def stop(self, job: ResponseJob) -> None:
        """Stop a job at its next step and wait until its ending is saved."""
        await self.jobs.stop(job)

    async def delete(self, response_id: str) -> dict[str, Any]:
        job = self._job(response_id)
        if job is not None:
            await self.stop(job)
        if not await self.store.responses.delete(response_id):
            raise _missing(response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}
