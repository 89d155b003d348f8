"""One stretch of a run's execution, as a job (services/jobs) that goes on without its
client: from queued to requires_action or to its end. A run paused for tool outputs gets
a new job when they are submitted.

The job writes everything it produces to the store as it goes (the reply's text every
`flush_interval` seconds), and emits the API's stream events, in order, to whoever
follows it: each object is announced (`….created`) before its deltas. A cancel through
this server cancels the task; one through another server (status `cancelling` in the
store) is noticed at the next save.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hearth.core.errors import ContextLengthExceeded, HearthError, InvalidRequest, Overloaded
from hearth.core.ids import unix_now
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import Finished, ReasoningDelta, ToolCallDelta
from hearth.services.assistants import objects
from hearth.services.assistants.context import PromptTooLong, admit, build_prompt
from hearth.services.assistants.objects import render, set_fields
from hearth.services.failures import engine_failure, openai_error_object
from hearth.services.generation import ModelReply
from hearth.services.jobs import EndedElsewhere, Job
from hearth.store import Store
from hearth.store.assistants import EXECUTING
from hearth.store.models import Run, RunStep, ThreadMessage

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]
RUNNING = ("queued", "in_progress")
STOPPED = objects.error("server_error", "The server stopped before this run finished.")
REVOKED = objects.error(
    "server_error", "The API key that started this run was revoked or has expired."
)
INTERNAL = objects.error("server_error", "The server had an error while processing this run.")
# The events after which a stream has nothing more to say.
FINAL_EVENTS = {
    "thread.run.requires_action",
    "thread.run.completed",
    "thread.run.incomplete",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.expired",
}


class RunJob(Job[Event]):
    kind = "run"
    STOPPED = STOPPED
    REVOKED = REVOKED
    INTERNAL = INTERNAL

    def __init__(
        self,
        store: Store,
        registry: ModelRegistry,
        run: Run,
        opening: list[Event],
        flush_interval: float,
    ) -> None:
        super().__init__(run.id, opening)
        self.store = store
        self.registry = registry
        self.run = run
        self.flush_interval = flush_interval
        self._reply: ModelReply | None = None
        self._message: ThreadMessage | None = None  # the reply being written
        self._message_step: RunStep | None = None
        self._calls_step: RunStep | None = None
        self._flushed_at = time.monotonic()
        # Whitespace before any words (models emit some around their calls): it opens no
        # reply of its own, and leads the reply if words follow.
        self._blank = ""

    @property
    def decided(self) -> bool:
        return self.run.status not in RUNNING

    def snapshot(self) -> dict[str, Any]:
        return render(self.run)

    # ---- events -------------------------------------------------------------------------

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        self.log.emit((name, data))

    def _emit_run(self, name: str) -> None:
        self._emit(f"thread.run.{name}", render(self.run))

    # ---- the run's lifecycle --------------------------------------------------------------

    async def work(self) -> None:
        try:
            self.run.status = "in_progress"
            if self.run.data["started_at"] is None:
                set_fields(self.run, started_at=unix_now())
            await self._save_run(RUNNING)
            self._emit_run("in_progress")
            self._reply = await self._admit()
            if self._reply is not None:
                await self._generate(self._reply)
        except (ContextLengthExceeded, InvalidRequest) as exc:
            await self._end("failed", last_error=objects.error("invalid_prompt", exc.message))
        except Overloaded as exc:  # no slot for it: the API's word is a rate limit
            await self._end("failed", last_error=objects.error("rate_limit_exceeded", exc.message))
        except HearthError as exc:
            await self._end("failed", last_error=objects.error("server_error", exc.message))

    async def end(self, status: str, error: dict[str, Any] | None = None) -> None:
        await self._end(status, last_error=error)

    async def crashed(self) -> None:
        shown = HearthError(INTERNAL["message"], code="server_error")
        self._emit("error", openai_error_object(shown))
        await self._end("failed", last_error=INTERNAL)

    async def release(self) -> None:
        if self._reply is not None:
            await self._reply.aclose()

    async def _admit(self) -> ModelReply | None:
        data = self.run.data
        max_tokens = None
        if data["max_completion_tokens"] is not None:
            used = (data["usage"] or {}).get("completion_tokens", 0)
            max_tokens = data["max_completion_tokens"] - used
            if max_tokens <= 0:
                await self._end("incomplete", reason="max_completion_tokens")
                return None
        prompt = await build_prompt(self.store, self.run)
        try:
            return await admit(self.registry, self.run, prompt, max_tokens)
        except PromptTooLong:
            await self._end("incomplete", reason="max_prompt_tokens")
            return None

    async def _generate(self, reply: ModelReply) -> None:
        calls: list[dict[str, Any]] = []
        async for _, event in reply.events():
            if isinstance(event, Finished):
                if event.reason == "error":
                    message = engine_failure(event).message
                    await self._end("failed", last_error=objects.error("server_error", message))
                    return
                await self._finished(event, calls)
                return
            if isinstance(event, ToolCallDelta):
                await self._call_delta(event, calls)
            elif isinstance(event, ReasoningDelta):
                await self._reasoning(event.text)
            elif event.text:
                await self._text(event.text)
            if time.monotonic() - self._flushed_at >= self.flush_interval:
                await self._flush()

    async def _text(self, text: str) -> None:
        if self._message is None:
            if not text.strip():
                self._blank += text
                return
            text, self._blank = self._blank + text, ""
            await self._open_message()
        message = self._message
        assert message is not None
        objects.set_message_text(message, objects.message_text(message) + text)
        delta = {"content": [{"index": 0, "type": "text", "text": {"value": text}}]}
        self._emit(
            "thread.message.delta",
            {"id": message.id, "object": "thread.message.delta", "delta": delta},
        )

    async def _reasoning(self, text: str) -> None:
        """A reasoning model's thinking: streamed on the message's deltas as a field of its
        own (`reasoning_content`, as chat completions name it), never as its text."""
        if self._message is None:
            await self._open_message()
        message = self._message
        assert message is not None
        self._emit(
            "thread.message.delta",
            {
                "id": message.id,
                "object": "thread.message.delta",
                "delta": {"reasoning_content": text},
            },
        )

    async def _open_message(self) -> None:
        message = objects.new_message(
            self.run.thread_id, "assistant", [], {}, run=self.run, status="in_progress"
        )
        announced = render(message)  # announced empty: its text comes as deltas
        objects.set_message_text(message, "")  # stored with one (growing) text block
        step = objects.new_step(self.run, objects.message_creation(message.id))
        await self.store.threads.messages.add(message)
        await self.store.threads.steps.add(step)
        self._message, self._message_step = message, step
        self._emit("thread.run.step.created", render(step))
        self._emit("thread.run.step.in_progress", render(step))
        self._emit("thread.message.created", announced)
        self._emit("thread.message.in_progress", announced)

    async def _close_message(self, status: str, usage: dict[str, int] | None = None) -> None:
        message, step = self._message, self._message_step
        if message is None or step is None:
            return
        self._message = self._message_step = None
        now = unix_now()
        if status == "completed":
            set_fields(message, status="completed", completed_at=now)
        else:
            reason = {"incomplete": "max_tokens", "cancelled": "run_cancelled"}.get(
                status, "run_failed"
            )
            set_fields(
                message,
                status="incomplete",
                incomplete_at=now,
                incomplete_details={"reason": reason},
            )
        await self._end_step(step, "completed" if status == "incomplete" else status, usage)
        await self.store.threads.messages.update(message.id, data=message.data)
        self._emit(f"thread.message.{message.data['status']}", render(message))
        self._emit(f"thread.run.step.{step.data['status']}", render(step))

    async def _end_step(self, step: RunStep, status: str, usage: dict[str, int] | None) -> None:
        stamp = {"completed": "completed_at", "cancelled": "cancelled_at"}.get(status, "failed_at")
        set_fields(step, status=status, usage=usage, **{stamp: unix_now()})
        if status == "failed":
            set_fields(step, last_error=self.run.data["last_error"])
        await self.store.threads.steps.update(step.id, data=step.data)

    async def _call_delta(self, delta: ToolCallDelta, calls: list[dict[str, Any]]) -> None:
        if self._calls_step is None:
            await self._close_message("completed")
            step = objects.new_step(self.run, {"type": "tool_calls", "tool_calls": []})
            await self.store.threads.steps.add(step)
            self._calls_step = step
            self._emit("thread.run.step.created", render(step))
            self._emit("thread.run.step.in_progress", render(step))
        shown: dict[str, Any] = {"index": delta.call, "type": "function"}
        if delta.id is not None:
            calls.append(
                {
                    "id": delta.id,
                    "type": "function",
                    "function": {"name": delta.name or "", "arguments": "", "output": None},
                }
            )
            shown.update(id=delta.id, function={"name": delta.name or "", "arguments": ""})
        if delta.arguments:
            calls[delta.call]["function"]["arguments"] += delta.arguments
            shown.setdefault("function", {})["arguments"] = delta.arguments
        step = self._calls_step
        self._emit(
            "thread.run.step.delta",
            {
                "id": step.id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [shown]}},
            },
        )

    async def _finished(self, event: Finished, calls: list[dict[str, Any]]) -> None:
        used = objects.usage(event.usage)
        set_fields(self.run, usage=objects.add_usage(self.run.data["usage"], used))
        if calls and self._calls_step is not None:
            await self._close_message("completed")
            step, self._calls_step = self._calls_step, None
            set_fields(step, step_details={"type": "tool_calls", "tool_calls": calls}, usage=used)
            await self.store.threads.steps.update(step.id, data=step.data)
            if event.reason == "length":
                # The last call was cut off: no outputs can be asked for a call whose
                # arguments were never finished.
                await self._end("incomplete", reason="max_completion_tokens")
                return
            required = [
                {"id": c["id"], "type": "function", "function": _without_output(c["function"])}
                for c in calls
            ]
            self.run.status = "requires_action"
            set_fields(
                self.run,
                required_action={
                    "type": "submit_tool_outputs",
                    "submit_tool_outputs": {"tool_calls": required},
                },
            )
            await self._save_run(RUNNING)
            self._emit_run("requires_action")
            return
        if self._message is None:  # nothing said: the reply is still a (blank) message
            await self._open_message()
        cut = event.reason == "length" and self.run.data["max_completion_tokens"] is not None
        await self._close_message("incomplete" if event.reason == "length" else "completed", used)
        if cut:
            await self._end("incomplete", reason="max_completion_tokens")
        else:
            await self._end("completed")

    async def _flush(self) -> None:
        self._flushed_at = time.monotonic()
        if self._message is not None:
            await self.store.threads.messages.update(self._message.id, data=self._message.data)
        # Also how a cancel through another server is noticed.
        if not await self.store.threads.runs.update(
            self.run.id, only_if=("in_progress",), heartbeat_at=time.time()
        ):
            raise EndedElsewhere()

    async def _save_run(self, only_if: tuple[str, ...]) -> None:
        run = self.run
        if not await self.store.threads.runs.update(
            run.id, only_if=only_if, status=run.status, data=run.data
        ):
            raise EndedElsewhere()

    async def ended_elsewhere(self) -> None:
        stored = await self.store.threads.runs.get(self.run.id)
        if stored is not None and stored.status == "cancelling":
            await self._end("cancelled")
            return
        self._adopt(stored)
        self._emit_run(self.run.status)

    def _adopt(self, stored: Run | None) -> None:
        """Take the ending the store has for this run."""
        if stored is None:  # its thread was deleted through another server
            self.run.status = "cancelled"
        else:
            self.run = stored

    async def _end(
        self, status: str, *, last_error: dict[str, str] | None = None, reason: str | None = None
    ) -> None:
        """Save the run's ending (and close its open reply and steps) and announce it."""
        now = unix_now()
        stamp = {
            "completed": "completed_at",
            "cancelled": "cancelled_at",
            "failed": "failed_at",
            "incomplete": "completed_at",
        }[status]
        self.run.status = status
        set_fields(
            self.run,
            required_action=None,
            last_error=last_error,
            incomplete_details={"reason": reason} if reason else None,
            **{stamp: now},
        )
        try:
            await asyncio.shield(self._close_open(status))
            if not await asyncio.shield(self.store.threads.runs.update(
                self.run.id, only_if=EXECUTING, status=status, data=self.run.data
            )):  # fmt: skip
                # Ended elsewhere meanwhile (failed by a sweep, its thread deleted): the
                # store keeps that ending, and the stream's last event says so too.
                self._adopt(await self.store.threads.runs.get(self.run.id))
        except Exception:
            log.exception("run %s: its ending could not be saved", self.run.id)
        self._emit_run(self.run.status)

    async def _close_open(self, status: str) -> None:
        await self._close_message(status)
        step, self._calls_step = self._calls_step, None
        if step is not None and step.data["status"] == "in_progress":
            await self._end_step(step, status if status != "incomplete" else "completed", None)
            self._emit(f"thread.run.step.{step.data['status']}", render(step))


def _without_output(function: dict[str, Any]) -> dict[str, Any]:
    return {"name": function["name"], "arguments": function["arguments"]}
