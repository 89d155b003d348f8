"""Runs and their steps: created, paused for tool outputs and continued, cancelled; each
stretch of work a RunJob (executor.py) that goes on when its client leaves.

At shutdown every job still running is stopped and saved as failed; on start, and at
each heartbeat, runs that a server which is gone left queued or in progress are marked
failed the same way (services/responses/owners.py decides who is gone)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id, unix_now
from hearth.services.assistants import params
from hearth.services.assistants.executor import STOPPED, Event, RunJob
from hearth.services.assistants.objects import TERMINAL, missing, render, set_fields
from hearth.services.assistants.params import ModifyParams, RunParams
from hearth.services.items import check_metadata
from hearth.services.responses.owners import keep_beating, orphan_judge, this_process
from hearth.store.models import Run, RunStep
from hearth.store.pages import PageQuery

if TYPE_CHECKING:
    from hearth.services.assistants.service import AssistantsService

log = logging.getLogger(__name__)

# A run paused for tool outputs expires when they have not come in this long.
EXPIRES_AFTER = 600
_OVERRIDES = {"model", "instructions", "temperature", "top_p", "response_format"}


class Runs:
    def __init__(
        self, service: AssistantsService, flush_interval: float, owner: str | None
    ) -> None:
        self.service = service
        self.store = service.store
        self.registry = service.registry
        self.flush_interval = flush_interval
        self.owner = owner or this_process()
        self._jobs: dict[str, RunJob] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.recover()
        self._heartbeat = asyncio.create_task(
            keep_beating(self._beat, "assistants"), name="assistants heartbeat"
        )

    async def recover(self) -> list[str]:
        now = time.time()

        def fail(row: Run) -> None:
            row.status = "failed"
            set_fields(row, failed_at=int(now), last_error=STOPPED, required_action=None)

        ids = await self.store.threads.fail_orphans(orphan_judge(now), fail)
        if ids:
            log.warning("marked %d unfinished run(s) failed: %s", len(ids), ", ".join(ids))
        return ids

    async def _beat(self) -> None:
        await self.store.threads.heartbeat(self.owner, time.time(), list(self._jobs))
        await self.recover()
        await self.expire_overdue()

    async def expire_overdue(self, thread_id: str | None = None) -> None:
        """Runs whose time for tool outputs is up become expired: swept at each
        heartbeat, and at once before a thread's runs are listed or the thread takes a
        message or a run (an overdue run no longer holds it)."""
        for row in await self.store.threads.awaiting_tools(thread_id):
            if _overdue(row):
                await self._expire(row)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        for job in list(self._jobs.values()):
            await self._stop(job, "shutdown")

    def _spawn(self, run: Run, opening: list[Event]) -> RunJob:
        job = RunJob(self.store, self.registry, run, opening, self.flush_interval)
        job.task = asyncio.create_task(job.execute(), name=f"run {run.id}")
        self._jobs[run.id] = job
        job.task.add_done_callback(lambda _: self._forget(job))
        return job

    def _forget(self, job: RunJob) -> None:
        # Only this job: the run may have its next job (tool outputs came in) by now.
        if self._jobs.get(job.run.id) is job:
            del self._jobs[job.run.id]

    async def _stop(self, job: RunJob, reason: str) -> None:
        """Stop a job at its engine's next step and wait until its ending is saved."""
        job.cancel_reason = reason
        assert job.task is not None
        job.task.cancel()
        await asyncio.gather(job.task, return_exceptions=True)
        if not job.done.is_set():  # cancelled before it began: end it here
            await job.end_unstarted("cancelled" if reason == "cancelled" else "failed")

    async def stop_thread(self, thread_id: str) -> None:
        for job in [j for j in self._jobs.values() if j.run.thread_id == thread_id]:
            await self._stop(job, "cancelled")

    # ---- create -------------------------------------------------------------------------

    async def create(
        self, thread_id: str, body: RunParams, opening: list[Event] | None = None
    ) -> RunJob:
        """Check the request, store the run (and its additional messages) and start it."""
        await self.service.thread_row(thread_id)
        assistant = await self.service.assistant_row(body.assistant_id)
        merged = {**assistant.data, **body.model_dump(include=_OVERRIDES, exclude_none=True)}
        self.registry.resolve(merged["model"])
        tools = params.check_tools(body.tools) if body.tools is not None else None
        tools = assistant.data["tools"] if tools is None else tools
        choice = body.tool_choice
        params.check_tool_choice(choice, tools)
        params.response_grammar(merged["response_format"])
        instructions = merged["instructions"] or ""
        if body.additional_instructions:
            instructions = f"{instructions}\n\n{body.additional_instructions}".strip()
        now, run_id = unix_now(), new_id("run_")
        data = {
            "id": run_id,
            "object": "thread.run",
            "created_at": now,
            "thread_id": thread_id,
            "assistant_id": assistant.id,
            "required_action": None,
            "last_error": None,
            "expires_at": now + EXPIRES_AFTER,
            "started_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "incomplete_details": None,
            "model": merged["model"],
            "instructions": instructions,
            "tools": tools,
            "tool_choice": choice if choice is not None else "auto",
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "response_format": merged["response_format"] or "auto",
            "temperature": merged["temperature"],
            "top_p": merged["top_p"],
            "max_prompt_tokens": body.max_prompt_tokens,
            "max_completion_tokens": body.max_completion_tokens,
            "truncation_strategy": params.check_truncation(body.truncation_strategy),
            "usage": None,
        }
        run = Run(
            id=run_id,
            created_at=now,
            thread_id=thread_id,
            status="queued",
            meta=check_metadata(body.metadata),
            data=data,
            owner=self.owner,
            heartbeat_at=time.time(),
        )
        messages = [
            self.service.message_row(thread_id, m, f"additional_messages[{i}]")
            for i, m in enumerate(body.additional_messages or [])
        ]
        await self.expire_overdue(thread_id)
        blocking = await self.store.threads.add_unless_open_run(thread_id, [*messages, run])
        if blocking is not None:
            raise InvalidRequest(
                f"Thread {thread_id} already has an active run {blocking}.", param="thread_id"
            )
        shown = render(run)
        events = [*(opening or []), ("thread.run.created", shown), ("thread.run.queued", shown)]
        return self._spawn(run, events)

    # ---- read ---------------------------------------------------------------------------

    async def _run(self, thread_id: str, run_id: str) -> Run:
        await self.service.thread_row(thread_id)
        row = await self.store.threads.runs.get(run_id, thread_id=thread_id)
        if row is None:
            raise missing("run", run_id, "run_id")
        if row.status == "requires_action" and _overdue(row):
            await self._expire(row)
        return row

    async def _expire(self, row: Run) -> None:
        row.status = "expired"
        set_fields(row, required_action=None)
        if await self.store.threads.runs.update(
            row.id, only_if=("requires_action",), status=row.status, data=row.data
        ):
            for step in await self._open_steps(row.id):
                set_fields(step, status="expired", expired_at=unix_now())
                await self.store.threads.steps.update(step.id, data=step.data)

    async def _open_steps(self, run_id: str) -> list[RunStep]:
        steps = await self.store.threads.steps.all(run_id=run_id)
        return [s for s in steps if s.data["status"] == "in_progress"]

    async def get(self, thread_id: str, run_id: str) -> dict[str, Any]:
        return render(await self._run(thread_id, run_id))

    async def list(self, thread_id: str, query: PageQuery) -> dict[str, Any]:
        await self.service.thread_row(thread_id)
        await self.expire_overdue(thread_id)
        return (await self.store.threads.runs.page(query, thread_id=thread_id)).as_list(render)

    async def modify(self, thread_id: str, run_id: str, body: ModifyParams) -> dict[str, Any]:
        row = await self._run(thread_id, run_id)
        if "metadata" in body.model_fields_set:
            row.meta = check_metadata(body.metadata)
            await self.store.threads.runs.update(run_id, meta=row.meta)
        return render(row)

    async def steps(self, thread_id: str, run_id: str, query: PageQuery) -> dict[str, Any]:
        await self._run(thread_id, run_id)
        return (await self.store.threads.steps.page(query, run_id=run_id)).as_list(render)

    async def step(self, thread_id: str, run_id: str, step_id: str) -> dict[str, Any]:
        await self._run(thread_id, run_id)
        row = await self.store.threads.steps.get(step_id, run_id=run_id)
        if row is None:
            raise missing("run step", step_id, "step_id")
        return render(row)

    # ---- change -------------------------------------------------------------------------

    async def cancel(self, thread_id: str, run_id: str) -> dict[str, Any]:
        row = await self._run(thread_id, run_id)
        if row.status in (*TERMINAL, "cancelling"):
            raise InvalidRequest(f"Cannot cancel run with status '{row.status}'.", param="run_id")
        if row.status == "requires_action":
            row.status = "cancelled"
            set_fields(row, required_action=None, cancelled_at=unix_now())
            if await self.store.threads.runs.update(
                run_id, only_if=("requires_action",), status=row.status, data=row.data
            ):
                for step in await self._open_steps(run_id):
                    set_fields(step, status="cancelled", cancelled_at=unix_now())
                    await self.store.threads.steps.update(step.id, data=step.data)
            return await self.get(thread_id, run_id)
        await self.store.threads.runs.update(
            run_id, only_if=("queued", "in_progress"), status="cancelling"
        )
        job = self._jobs.get(run_id)
        if job is not None:
            await self._stop(job, "cancelled")
        # Run by another server: it sees `cancelling` at its next save and ends the run.
        return await self.get(thread_id, run_id)

    async def submit_tool_outputs(self, thread_id: str, run_id: str, outputs: Any) -> RunJob:
        row = await self._run(thread_id, run_id)
        if row.status != "requires_action":
            raise InvalidRequest(
                f'Runs in status "{row.status}" do not accept tool outputs.', param="run_id"
            )
        pending = row.data["required_action"]["submit_tool_outputs"]["tool_calls"]
        expected = [call["id"] for call in pending]
        given = _outputs_by_call(outputs, expected)
        steps = [s for s in await self._open_steps(run_id) if s.data["type"] == "tool_calls"]
        row.status = "queued"
        set_fields(row, required_action=None)
        if not await self.store.threads.runs.update(
            run_id,
            only_if=("requires_action",),
            status=row.status,
            data=row.data,
            owner=self.owner,
            heartbeat_at=time.time(),
        ):
            raise InvalidRequest("The run no longer accepts tool outputs.", param="run_id")
        opening: list[Event] = []
        for step in steps:
            details = step.data["step_details"]
            calls = [
                {**c, "function": {**c["function"], "output": given.get(c["id"])}}
                for c in details["tool_calls"]
            ]
            set_fields(
                step,
                status="completed",
                completed_at=unix_now(),
                step_details={"type": "tool_calls", "tool_calls": calls},
            )
            await self.store.threads.steps.update(step.id, data=step.data)
            opening.append(("thread.run.step.completed", render(step)))
        opening.append(("thread.run.queued", render(row)))
        return self._spawn(row, opening)


def _outputs_by_call(outputs: Any, expected: list[str]) -> dict[str, str]:
    if not isinstance(outputs, list) or not outputs:
        raise InvalidRequest("'tool_outputs' must be a non-empty list.", param="tool_outputs")
    given: dict[str, str] = {}
    for i, item in enumerate(outputs):
        where = f"tool_outputs[{i}]"
        call_id = item.get("tool_call_id") if isinstance(item, dict) else None
        if call_id not in expected:
            raise InvalidRequest(
                f"Invalid value for '{where}.tool_call_id': {call_id!r} is not a pending tool "
                f"call of this run (expected one of {expected}).",
                param=f"{where}.tool_call_id",
            )
        if call_id in given:
            raise InvalidRequest(
                f"Duplicate output for tool call {call_id!r}.", param=f"{where}.tool_call_id"
            )
        output = item.get("output")
        if output is None:
            output = ""
        if not isinstance(output, str):
            raise InvalidRequest(f"'{where}.output' must be a string.", param=f"{where}.output")
        given[call_id] = output
    left = [c for c in expected if c not in given]
    if left:
        raise InvalidRequest(
            f"Expected tool outputs for call_ids {expected}, got {list(given)}: missing {left}.",
            param="tool_outputs",
        )
    return given


def _overdue(row: Run) -> bool:
    return time.time() > row.data["expires_at"]
