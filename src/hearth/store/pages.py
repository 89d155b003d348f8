"""Cursor pages, the one way every list is read: `limit`, `order`, `after` and `before`
(ids), ordered by the table's `seq`. Every list route (items, conversations, assistants,
threads' messages, runs and run steps) answers `{object: "list", data, first_id, last_id,
has_more}` from this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.core.errors import NotFound
from hearth.store.tenants import visible

T = TypeVar("T")
Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int = 20
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool

    def as_list(self, render: Any, key: str = "id") -> dict[str, Any]:
        """The API's list object, each row drawn by `render`."""
        data = [render(row) for row in self.data]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0][key] if data else None,
            "last_id": data[-1][key] if data else None,
            "has_more": self.has_more,
        }


async def paginate(
    session: AsyncSession, stmt: Select[Any], model: Any, query: PageQuery
) -> Page[Any]:
    """Rows of `stmt` (already filtered to its owner) between the cursors, in order.
    `model` has `seq` and `id` columns; an unknown `after` or `before` id is a 404 naming
    it. A `before` page is the `limit` rows just ahead of its cursor in list order."""
    asc = query.order == "asc"
    base = stmt
    for param, cursor_id, later in (("after", query.after, asc), ("before", query.before, not asc)):
        if cursor_id is None:
            continue
        seq_of = base.with_only_columns(model.seq).where(model.id == cursor_id)
        cursor = await session.scalar(seq_of)
        if cursor is None:
            raise NotFound(f"No item found with id '{cursor_id}'.", param=param)
        stmt = stmt.where(model.seq > cursor if later else model.seq < cursor)
    # Read toward the `before` cursor from its side, so the page is the rows nearest it.
    backward = query.before is not None and query.after is None
    ascending = asc != backward
    ordering = model.seq.asc() if ascending else model.seq.desc()
    rows = list((await session.scalars(stmt.order_by(ordering).limit(query.limit + 1))).all())
    page = rows[: query.limit]
    return Page(data=page[::-1] if backward else page, has_more=len(rows) > query.limit)


def owned(model: Any, *, only: Any = None, **owner: Any) -> Select[Any]:
    """`select(model)` (or of its column `only`) filtered to one owner, e.g.
    `owned(ConversationItem, conversation_id=c)`, and to the rows the current key may
    reach (store.tenants)."""
    stmt = select(model if only is None else only).where(visible(model))
    for column, value in owner.items():
        stmt = stmt.where(getattr(model, column) == value)
    return stmt
