"""AssistantsService: assistants, threads and messages, checked and stored; its `runs`
(runs.py) execute them. The surfaces call only this."""

from __future__ import annotations

from typing import Any

from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id, unix_now
from hearth.engine.registry import ModelRegistry
from hearth.services.assistants import objects, params
from hearth.services.assistants.executor import RunJob
from hearth.services.assistants.objects import deleted, missing, render, set_fields
from hearth.services.assistants.params import (
    AssistantParams,
    MessageParams,
    ModifyParams,
    ThreadParams,
    ThreadRunParams,
)
from hearth.services.assistants.runs import Runs
from hearth.services.items import check_metadata
from hearth.store import Store
from hearth.store.models import Assistant, Thread, ThreadMessage
from hearth.store.pages import PageQuery

_ASSISTANT_FIELDS = {"name", "description", "instructions", "temperature", "top_p"}


class AssistantsService:
    def __init__(
        self,
        store: Store,
        registry: ModelRegistry,
        flush_interval: float = 0.25,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.runs = Runs(self, flush_interval, owner)

    async def start(self) -> None:
        await self.runs.jobs.start()

    async def close(self) -> None:
        await self.runs.jobs.close()

    # ---- assistants ---------------------------------------------------------------------

    def _assistant_fields(self, body: AssistantParams) -> dict[str, Any]:
        """The fields sent, checked."""
        sent = body.model_fields_set
        fields = body.model_dump(include=_ASSISTANT_FIELDS & sent)
        if "model" in sent:  # null included, which no model is named
            self.registry.resolve(body.model)  # type: ignore[arg-type]
            fields["model"] = body.model
        if "tools" in sent:
            fields["tools"] = params.check_tools(body.tools)
        if "response_format" in sent:
            params.response_grammar(body.response_format)
            fields["response_format"] = body.response_format or "auto"
        params.check_tool_resources(body.tool_resources)
        return fields

    async def create_assistant(self, body: AssistantParams) -> dict[str, Any]:
        meta = check_metadata(body.metadata)
        now, assistant_id = unix_now(), new_id("asst_")
        data = {
            "id": assistant_id,
            "object": "assistant",
            "created_at": now,
            "name": None,
            "description": None,
            "model": None,
            "instructions": None,
            "tools": [],
            "tool_resources": {},
            "temperature": None,
            "top_p": None,
            "response_format": "auto",
            **self._assistant_fields(body),
        }
        row = Assistant(id=assistant_id, created_at=now, meta=meta, data=data)
        await self.store.assistants.add(row)
        return render(row)

    async def assistant_row(self, assistant_id: str, param: str = "assistant_id") -> Assistant:
        row = await self.store.assistants.get(assistant_id)
        if row is None:
            raise missing("assistant", assistant_id, param)
        return row

    async def get_assistant(self, assistant_id: str) -> dict[str, Any]:
        return render(await self.assistant_row(assistant_id))

    async def list_assistants(self, query: PageQuery) -> dict[str, Any]:
        return (await self.store.assistants.page(query)).as_list(render)

    async def modify_assistant(self, assistant_id: str, body: AssistantParams) -> dict[str, Any]:
        row = await self.assistant_row(assistant_id)
        set_fields(row, **self._assistant_fields(body))
        if "metadata" in body.model_fields_set:
            row.meta = check_metadata(body.metadata)
        await self.store.assistants.update(assistant_id, data=row.data, meta=row.meta)
        return render(row)

    async def delete_assistant(self, assistant_id: str) -> dict[str, Any]:
        if not await self.store.assistants.delete(assistant_id):
            raise missing("assistant", assistant_id, "assistant_id")
        return deleted("assistant", assistant_id)

    # ---- threads and messages -----------------------------------------------------------

    def _new_thread(self, body: ThreadParams, param: str = "") -> tuple[Thread, list[Any]]:
        params.check_tool_resources(body.tool_resources)
        meta = check_metadata(body.metadata, f"{param}metadata")
        now, thread_id = unix_now(), new_id("thread_")
        data = {"id": thread_id, "object": "thread", "created_at": now, "tool_resources": {}}
        thread = Thread(id=thread_id, created_at=now, meta=meta, data=data)
        messages = [
            self.message_row(thread_id, m, f"{param}messages[{i}]")
            for i, m in enumerate(body.messages or [])
        ]
        return thread, messages

    async def create_thread(self, body: ThreadParams) -> dict[str, Any]:
        thread, messages = self._new_thread(body)
        await self.store.threads.create(thread, messages)
        return render(thread)

    async def create_thread_and_run(self, body: ThreadRunParams) -> RunJob:
        """POST /threads/runs: a new thread (with its messages) and a run on it; a run
        that is refused leaves no thread behind."""
        thread, messages = self._new_thread(body.thread or ThreadParams(), "thread.")
        await self.assistant_row(body.assistant_id)
        await self.store.threads.create(thread, messages)
        try:
            return await self.runs.create(thread.id, body, [("thread.created", render(thread))])
        except BaseException:
            await self.store.threads.delete(thread.id)
            raise

    async def thread_row(self, thread_id: str) -> Thread:
        row = await self.store.threads.get(thread_id)
        if row is None:
            raise missing("thread", thread_id, "thread_id")
        return row

    async def get_thread(self, thread_id: str) -> dict[str, Any]:
        return render(await self.thread_row(thread_id))

    async def modify_thread(self, thread_id: str, body: ModifyParams) -> dict[str, Any]:
        row = await self.thread_row(thread_id)
        params.check_tool_resources(body.tool_resources)
        if "metadata" in body.model_fields_set:
            row.meta = check_metadata(body.metadata)
            await self.store.threads.update(thread_id, meta=row.meta)
        return render(row)

    async def delete_thread(self, thread_id: str) -> dict[str, Any]:
        await self.thread_row(thread_id)  # another key's thread is missing: nothing stops
        await self.runs.stop_thread(thread_id)
        if not await self.store.threads.delete(thread_id):
            raise missing("thread", thread_id, "thread_id")
        return deleted("thread", thread_id)

    def message_row(self, thread_id: str, body: MessageParams, param: str = "") -> ThreadMessage:
        prefix = f"{param}." if param else ""
        if body.role not in ("user", "assistant"):
            raise InvalidRequest(
                f"Invalid value for '{prefix}role': use 'user' or 'assistant'.",
                param=f"{prefix}role",
            )
        content = params.message_content(body.content, f"{prefix}content")
        params.check_attachments(body.attachments, f"{prefix}attachments")
        meta = check_metadata(body.metadata, f"{prefix}metadata")
        return objects.new_message(thread_id, body.role, content, meta)

    async def create_message(self, thread_id: str, body: MessageParams) -> dict[str, Any]:
        await self.thread_row(thread_id)
        row = self.message_row(thread_id, body)
        await self.runs.expire_overdue(thread_id)
        blocking = await self.store.threads.add_unless_open_run(thread_id, [row])
        if blocking is not None:
            raise InvalidRequest(
                f"Can't add messages to {thread_id} while a run {blocking} is active.",
                param="thread_id",
            )
        return render(row)

    async def _message(self, thread_id: str, message_id: str) -> ThreadMessage:
        await self.thread_row(thread_id)
        row = await self.store.threads.messages.get(message_id, thread_id=thread_id)
        if row is None:
            raise missing("message", message_id, "message_id")
        return row

    async def get_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        return render(await self._message(thread_id, message_id))

    async def list_messages(
        self, thread_id: str, query: PageQuery, run_id: str | None = None
    ) -> dict[str, Any]:
        await self.thread_row(thread_id)
        owner = {"thread_id": thread_id, **({"run_id": run_id} if run_id else {})}
        return (await self.store.threads.messages.page(query, **owner)).as_list(render)

    async def modify_message(
        self, thread_id: str, message_id: str, body: ModifyParams
    ) -> dict[str, Any]:
        row = await self._message(thread_id, message_id)
        if "metadata" in body.model_fields_set:
            row.meta = check_metadata(body.metadata)
            await self.store.threads.messages.update(message_id, meta=row.meta)
        return render(row)

    async def delete_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        await self._message(thread_id, message_id)
        await self.store.threads.messages.delete(message_id, thread_id=thread_id)
        return deleted("thread.message", message_id)
