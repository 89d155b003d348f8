"""Stored responses drawn in the Responses API's shapes."""

from __future__ import annotations

from typing import Any

from hearth.engine.types import Usage
from hearth.store.models import Response
from hearth.store.responses import ACTIVE

__all__ = ["ACTIVE", "TERMINAL_EVENT", "error", "render", "usage"]

TERMINAL_EVENT = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    # The API has no event for a cancelled stream; it ends like a cut-short one, and the
    # response in it says "cancelled".
    "cancelled": "response.incomplete",
    "failed": "response.failed",
}


def usage(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def render(
    row: Response, status: str | None = None, *, output: list[Any] | None = None
) -> dict[str, Any]:
    """The Response object; `status` and `output` override the row's, for a response
    still running (its output so far) and for the snapshots that open a stream."""
    req = row.request
    return {
        "id": row.id,
        "object": "response",
        "created_at": row.created_at,
        "status": status or row.status,
        "background": row.background,
        "error": row.error,
        "incomplete_details": row.incomplete_details,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": row.model,
        "output": output if output is not None else row.output,
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": row.previous_response_id,
        "conversation": {"id": row.conversation_id} if row.conversation_id else None,
        "reasoning": {"effort": req.get("reasoning_effort"), "summary": None},
        "service_tier": "default",
        "store": req.get("store", True),
        "temperature": req.get("temperature"),
        "text": req.get("text") or {"format": {"type": "text"}},
        "tool_choice": req.get("tool_choice", "auto"),
        "tools": req.get("tools", []),
        "top_logprobs": req.get("top_logprobs") or 0,
        "top_p": req.get("top_p"),
        "truncation": req.get("truncation", "disabled"),
        "usage": row.usage,
        "user": req.get("user"),
        "metadata": row.meta,
        "completed_at": row.completed_at,
    }
