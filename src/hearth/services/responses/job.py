"""One response being generated: its events, its saved progress and its ending.

Every response runs as a job (services/jobs) in the ResponsesService's table: a
foreground request waits for it or streams its events, a background one leaves it
running. The text so far is saved every `flush_interval` seconds (not every token), so a
poller sees the reply grow and a crash loses at most that much. Cancelling the task stops
generation at the engine's next step; the text so far is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from hearth.core.errors import HearthError, NotFound
from hearth.core.ids import new_id
from hearth.engine.types import Finished, ReasoningDelta, ToolCallDelta
from hearth.services.conversations import ConversationsService
from hearth.services.failures import engine_failure
from hearth.services.generation import ModelReply
from hearth.services.jobs import EndedElsewhere, Job
from hearth.services.logprobs import logprob_entries
from hearth.services.responses.events import OutputBuilder, Step
from hearth.services.responses.objects import ACTIVE, error, render
from hearth.services.responses.objects import usage as usage_object
from hearth.store import Store
from hearth.store.models import Response

log = logging.getLogger(__name__)

STOPPED = error("server_error", "The server stopped before this response finished.")
REVOKED = error(
    "server_error", "The API key that started this response was revoked or has expired."
)
INTERNAL = error("server_error", "The server had an error while processing your response.")
_STATUS = {
    "stop": "completed",
    "tool_calls": "completed",
    "length": "incomplete",
    "cancelled": "cancelled",
}


class ResponseJob(Job[dict[str, Any]]):
    kind = "response"
    STOPPED = STOPPED
    REVOKED = REVOKED
    INTERNAL = INTERNAL

    def __init__(
        self,
        row: Response,
        input_items: list[dict[str, Any]],
        store: Store | None,
        conversations: ConversationsService,
        flush_interval: float,
        admit: Callable[[], Awaitable[ModelReply]] | None = None,
        run: ModelReply | None = None,
    ) -> None:
        """Either `run`, a generation admitted already (a foreground response), or
        `admit`, which admits one when the job begins (a background one)."""
        super().__init__(row.id)
        self.row = row
        self.input_items = input_items
        self.store = store  # None: not stored (store=false)
        self.conversations = conversations
        self.flush_interval = flush_interval
        self.began = False
        self.output = OutputBuilder(row)
        self._admit = admit
        self._run = run
        self._pending: list[Step] = []
        self._finished = False
        self._flushed_at = time.monotonic()
        self.log.emit(*self.output.opened())

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def decided(self) -> bool:
        return self.row.status not in ACTIVE

    def snapshot(self) -> dict[str, Any]:
        """The response as it stands: while it runs, with its output so far."""
        if self.row.status in ACTIVE:
            return render(self.row, output=self.output.output())
        return render(self.row)

    # ---- running ------------------------------------------------------------------------

    async def work(self) -> None:
        if self._run is None:
            assert self._admit is not None
            try:
                self._run = await self._admit()
            except HearthError as exc:
                await self._finish("failed", err=error(exc.code or exc.type, exc.message))
                return
            if self.store is not None and not await self.store.responses.update_active(
                self.id, status="in_progress"
            ):
                raise EndedElsewhere()
        await self._generate(self._run)

    async def end(self, status: str, error: dict[str, Any] | None = None) -> None:
        await self._finish(status, err=error)

    async def release(self) -> None:
        if self._run is not None:
            await self._run.aclose()

    async def ended_elsewhere(self) -> None:
        """Cancelled (or deleted) through the store, by another server sharing the
        database: this job stops, and writes nothing more."""
        assert self.store is not None
        stored = await self.store.responses.get(self.id)
        self.row.status = stored.status if stored is not None else "cancelled"
        closing = self.output.close(self.row.status) if self.began else []
        self.row.output = self.output.output()
        self.log.emit(*closing, self.output.terminal())

    async def _generate(self, run: ModelReply) -> None:
        self.row.status = "in_progress"
        self.began = True
        self.log.emit(*self.output.started())
        async for _, event in run.events():
            if isinstance(event, Finished):
                if event.reason == "error":
                    message = engine_failure(event).message
                    await self._finish("failed", err=error("server_error", message))
                    return
                thought = run.reasoning_tokens.get(0, 0)
                usage = replace(event.usage, reasoning_tokens=thought)
                await self._finish(_STATUS.get(event.reason, "completed"), usage=usage)
                return
            step = _step(event)
            if step:
                self._pending.append(step)
                self.log.emit(*self.output.step(step))
                if time.monotonic() - self._flushed_at >= self.flush_interval:
                    await self._flush()

    async def _flush(self) -> None:
        self._flushed_at = time.monotonic()
        if self.store is None or not self._pending:
            return
        deltas = list(self._pending)
        # Off the list before the write, and the write shielded: a cancel landing during
        # it (after its commit, even) must not make the ending save them a second time.
        del self._pending[: len(deltas)]
        if not await asyncio.shield(self.store.responses.add_deltas(self.id, deltas)):
            raise EndedElsewhere()

    async def _finish(self, status: str, usage: Any = None, err: Any = None) -> None:
        if self._finished:
            return
        self._finished = True
        row = self.row
        row.status = status
        row.error = err
        if status == "incomplete":
            row.incomplete_details = {"reason": "max_output_tokens"}
        closing = self.output.close(status) if self.began else []
        row.output = self.output.output()
        row.usage = None if usage is None else usage_object(usage)
        row.completed_at = time.time() if status == "completed" else None
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._save_ending(status)
        except Exception:  # the store failed: the row goes stale and is failed later
            log.exception("saving the end of response %s failed", self.id)
        finally:
            # Whatever the store did, the client hears how the response ended.
            self.log.emit(*closing, self.output.terminal())

    async def _save_ending(self, status: str) -> None:
        row = self.row
        try:
            saved = await self._save()
        except EndedElsewhere:
            saved = False
        if not saved:
            # Ended elsewhere meanwhile (cancelled through another server): the store
            # keeps that ending, and the stream's last event says so too.
            assert self.store is not None
            stored = await self.store.responses.get(self.id)
            row.status = stored.status if stored is not None else "cancelled"
            return
        if row.conversation_id and status != "failed":
            await self._append(row.conversation_id)

    async def _save(self) -> bool:
        """Write the ending; False when the store had it ended already."""
        if self.store is None:
            return True
        await self._flush()
        row = self.row
        return await self.store.responses.update_active(
            row.id,
            status=row.status,
            output=row.output,
            usage=row.usage,
            error=row.error,
            incomplete_details=row.incomplete_details,
            completed_at=row.completed_at,
        )

    async def _append(self, conversation_id: str) -> None:
        """The turn joins its conversation (also when the response itself is not stored)."""
        try:
            await self.conversations.append(conversation_id, [*self.input_items, *self.row.output])
        except NotFound:
            log.info("conversation %s was deleted while response %s ran", conversation_id, self.id)


def _step(event: Any) -> Step | None:
    """An engine event as a saved step (see events.py): text (with its tokens' logprobs
    when they were asked for), or a piece of a call."""
    if isinstance(event, ReasoningDelta):
        return {"reasoning": event.text}
    if isinstance(event, ToolCallDelta):
        step: dict[str, Any] = {"args": event.arguments} if event.arguments else {}
        if event.id is not None:
            step.update(call_id=event.id, item_id=new_id("fc_"), name=event.name or "")
        return step or None
    if event.logprobs:
        return {"text": event.text, "logprobs": logprob_entries(event.logprobs)}
    return event.text or None
