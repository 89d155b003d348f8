"""Runs and their steps: created, paused for tool outputs and continued, cancelled; each
stretch of work a RunJob (executor.py) that goes on when its client leaves.

At shutdown every job still running is stopped and saved as failed; on start, and at
each heartbeat, runs that a server which is gone left queued or in progress are marked
failed the same way (by the job table, services/jobs)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id, unix_now
from hearth.services.assistants import params
from hearth.services.assistants.executor import RUNNING, STOPPED, Event, RunJob
from hearth.services.assistants.objects import TERMINAL, missing, render, set_fields
from hearth.services.assistants.params import ModifyParams, RunParams
from hearth.services.items import check_metadata
from hearth.services.jobs import JobTable
from hearth.store.models import Run, RunStep
from hearth.store.pages import PageQuery

if TYPE_CHECKING:
    from hearth.services.assistants.service import AssistantsService

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
        self.jobs: JobTable[RunJob] = JobTable(
            "run",
            self.store.threads.heartbeat,
            lambda judge: self.store.threads.fail_orphans(judge, _fail_orphan),
            owner,
            self.expire_overdue,
        )

    # ---- lifecycle ----------------------------------------------------------------------

    async def expire_overdue(self, thread_id: str | None = None) -> None:
        """Runs whose time for tool outputs is up become expired: swept at each
        heartbeat, and at once before a thread's runs are listed or the thread takes a
        message or a run (an overdue run no longer holds it)."""
        for row in await self.store.threads.awaiting_tools(thread_id):
            if _overdue(row):
                await self._expire(row)

    def _spawn(self, run: Run, opening: list[Event]) -> RunJob:
        return self.jobs.spawn(RunJob(self.store, self.registry, run, opening, self.flush_interval))

    async def stop_thread(self, thread_id: str) -> None:
        await asyncio.gather(
            *(self.jobs.stop(job) for job in self.jobs.jobs() if job.run.thread_id == thread_id)
        )

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
            owner=self.jobs.owner,
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
        await self._end_paused(row, "expired")

    async def _end_paused(self, row: Run, status: str) -> bool:
        """End a run paused for tool outputs, and its open steps, as expired or
        cancelled; False when it was no longer paused."""
        row.status = status
        set_fields(row, required_action=None)
        if status == "cancelled":
            set_fields(row, cancelled_at=unix_now())
        if not await self.store.threads.runs.update(
            row.id, only_if=("requires_action",), status=row.status, data=row.data
        ):
            return False
        for step in await self._open_steps(row.id):
            set_fields(step, status=status, **{f"{status}_at": unix_now()})
            await self.store.threads.steps.update(step.id, data=step.data)
        return True

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
        return await self._cancel(thread_id, run_id, again=True)

    async def _cancel(self, thread_id: str, run_id: str, again: bool) -> dict[str, Any]:
        row = await self._run(thread_id, run_id)
        job = self.jobs.get(run_id)
        if job is not None and job.decided:
            # This server's job is saving its ending (or its pause for tool outputs):
            # the cancel applies to what it saves.
            await job.done.wait()
            row, job = await self._run(thread_id, run_id), None
        if row.status in (*TERMINAL, "cancelling"):
            raise InvalidRequest(f"Cannot cancel run with status '{row.status}'.", param="run_id")
        if row.status == "requires_action":
            cancelled = await self._end_paused(row, "cancelled")
        else:
            # Run by another server, it sees `cancelling` at its next save and ends the run.
            cancelled = await self.store.threads.runs.update(
                run_id, only_if=RUNNING, status="cancelling"
            )
            if cancelled and job is not None:
                await self.jobs.stop(job)
        if not cancelled and again:
            # It moved on between the read and the write (it ended, paused or resumed,
            # through another server): cancel what it is now.
            return await self._cancel(thread_id, run_id, again=False)
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
            owner=self.jobs.owner,
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


def _fail_orphan(row: Run) -> None:
    row.status = "failed"
    set_fields(row, failed_at=unix_now(), last_error=STOPPED, required_action=None)


def _overdue(row: Run) -> bool:
    return time.time() > row.data["expires_at"]
