"""A batch as the API shows it (Anthropic's MessageBatch), and the results a request
can have (a line of the results file, less its custom_id)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hearth.store.models import MessageBatch

EXPIRES_AFTER = 24 * 3600  # seconds from creation: requests not run by then expire
CANCELED: dict[str, Any] = {"type": "canceled"}
EXPIRED: dict[str, Any] = {"type": "expired"}


def errored(kind: str, message: str) -> dict[str, Any]:
    """An errored result: the error as Anthropic's API would have answered it."""
    return {
        "type": "errored",
        "error": {"type": "error", "error": {"type": kind, "message": message}},
    }


def timestamp(at: float | None) -> str | None:
    """RFC 3339 in UTC, as Anthropic writes its times."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def render(row: MessageBatch, counts: dict[str, int], results_url: str) -> dict[str, Any]:
    ended = row.status == "ended"
    return {
        "id": row.id,
        "type": "message_batch",
        "processing_status": row.status,
        "request_counts": counts,
        "ended_at": timestamp(row.ended_at),
        "created_at": timestamp(row.created_at),
        "expires_at": timestamp(row.expires_at),
        "cancel_initiated_at": timestamp(row.cancel_initiated_at),
        "archived_at": None,
        "results_url": results_url if ended else None,
    }
