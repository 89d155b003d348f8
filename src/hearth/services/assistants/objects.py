"""Stored rows drawn in the Assistants API's shapes, and new rows built.

A row's `data` is the object less its metadata (a column) and, for a run, its status
(a column, so the store can select and guard on it)."""

from __future__ import annotations

import copy
from typing import Any

from hearth.core.errors import NotFound
from hearth.core.ids import new_id, unix_now
from hearth.engine.types import Usage
from hearth.services.assistants.params import text_block
from hearth.store.models import Assistant, Run, RunStep, Thread, ThreadMessage

Row = Assistant | Thread | ThreadMessage | Run | RunStep

# A run that has stopped for good; `requires_action` is only a pause.
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")


def render(row: Row) -> dict[str, Any]:
    shown = copy.deepcopy(row.data)
    if not isinstance(row, RunStep):
        shown["metadata"] = row.meta
    if isinstance(row, Run):
        shown["status"] = row.status
    return shown


def missing(kind: str, object_id: str, param: str) -> NotFound:
    return NotFound(f"No {kind} found with id '{object_id}'.", param=param)


def deleted(kind: str, object_id: str) -> dict[str, Any]:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


def usage(u: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def add_usage(total: dict[str, int] | None, more: dict[str, int]) -> dict[str, int]:
    base = total or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {key: base[key] + more[key] for key in base}


def error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def new_message(
    thread_id: str,
    role: str,
    content: list[dict[str, Any]],
    metadata: dict[str, str],
    *,
    run: Run | None = None,
    status: str = "completed",
) -> ThreadMessage:
    now = unix_now()
    message_id = new_id("msg_")
    data = {
        "id": message_id,
        "object": "thread.message",
        "created_at": now,
        "thread_id": thread_id,
        "status": status,
        "incomplete_details": None,
        "completed_at": now if status == "completed" else None,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": run.data["assistant_id"] if run is not None else None,
        "run_id": run.id if run is not None else None,
        "attachments": [],
    }
    return ThreadMessage(
        id=message_id,
        created_at=now,
        thread_id=thread_id,
        run_id=run.id if run is not None else None,
        meta=metadata,
        data=data,
    )


def message_text(row: ThreadMessage) -> str:
    return "".join(block["text"]["value"] for block in row.data["content"])


def set_message_text(row: ThreadMessage, text: str) -> None:
    row.data = {**row.data, "content": [text_block(text)]}


def new_step(run: Run, details: dict[str, Any]) -> RunStep:
    now = unix_now()
    step_id = new_id("step_")
    data = {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": now,
        "assistant_id": run.data["assistant_id"],
        "thread_id": run.thread_id,
        "run_id": run.id,
        "type": details["type"],
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }
    return RunStep(id=step_id, created_at=now, thread_id=run.thread_id, run_id=run.id, data=data)


def message_creation(message_id: str) -> dict[str, Any]:
    return {"type": "message_creation", "message_creation": {"message_id": message_id}}


def set_fields(row: Row, **fields: Any) -> None:
    """Change fields of a row's `data` (a new dict, so the ORM sees the change)."""
    row.data = {**row.data, **fields}
