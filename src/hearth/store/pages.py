"""Cursor pages, the one way every list is read: `limit`, `order` and `after` (an id),
ordered by the table's `seq`. Every list route (items, conversations, and later threads,
messages, runs) answers `{object: "list", data, first_id, last_id, has_more}` from this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.core.errors import NotFound

T = TypeVar("T")
Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int = 20
    order: Order = "desc"
    after: str | None = None


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
    """Rows of `stmt` (already filtered to its owner) after the cursor, in order.
    `model` has `seq` and `id` columns; an unknown `after` id is a 404 naming it."""
    if query.after is not None:
        cursor = await session.scalar(
            stmt.with_only_columns(model.seq).where(model.id == query.after)
        )
        if cursor is None:
            raise NotFound(f"No item found with id '{query.after}'.", param="after")
        stmt = stmt.where(model.seq > cursor if query.order == "asc" else model.seq < cursor)
    ordering = model.seq.asc() if query.order == "asc" else model.seq.desc()
    rows = list((await session.scalars(stmt.order_by(ordering).limit(query.limit + 1))).all())
    return Page(data=rows[: query.limit], has_more=len(rows) > query.limit)


def owned(model: Any, **owner: Any) -> Select[Any]:
    """`select(model)` filtered to one owner, e.g. `owned(ConversationItem, conversation_id=c)`."""
    stmt = select(model)
    for column, value in owner.items():
        stmt = stmt.where(getattr(model, column) == value)
    return stmt
