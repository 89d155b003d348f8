"""GET /v1/models and /v1/models/{id} in Anthropic's shape, for a request that carries
`anthropic-version` (the anthropic SDKs always send it): the OpenAI routes hand over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hearth.core.errors import InvalidRequest

VERSION_HEADER = "anthropic-version"


def model_info(name: str, created: int) -> dict[str, Any]:
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z"),
    }


def model_page(
    models: list[dict[str, Any]],
    before_id: str | None = None,
    after_id: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """One page of the list: `after_id` pages forward, `before_id` back, as Anthropic's do."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: must be between 1 and 1000", param="limit")
    ids = [m["id"] for m in models]
    for cursor, param in ((after_id, "after_id"), (before_id, "before_id")):
        if cursor is not None and cursor not in ids:
            raise InvalidRequest(f"{param}: no model {cursor!r} in the list", param=param)
    if after_id is not None:
        start = ids.index(after_id) + 1
        page = models[start : start + limit]
        more = start + limit < len(models)
    elif before_id is not None:
        end = ids.index(before_id)
        page = models[max(0, end - limit) : end]
        more = end - limit > 0
    else:
        page = models[:limit]
        more = limit < len(models)
    return {
        "data": page,
        "has_more": more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
