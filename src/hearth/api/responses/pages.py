"""The `limit`, `order`, `after` and `before` query parameters every list route takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hearth.core.errors import InvalidRequest
from hearth.store.pages import PageQuery


def page_query(
    limit: str = "20", order: str = "desc", after: str | None = None, before: str | None = None
) -> PageQuery:
    # Checked here rather than by FastAPI, so the error names `limit`, not `query.limit`.
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise InvalidRequest(
            f"Invalid value for 'limit': expected an integer from 1 to 100, got {limit!r}.",
            param="limit",
        )
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid value for 'order': expected 'asc' or 'desc', got {order!r}.", param="order"
        )
    return PageQuery(
        limit=int(limit),
        order=order,  # type: ignore[arg-type]
        after=after or None,
        before=before or None,
    )


Page = Annotated[PageQuery, Depends(page_query)]
