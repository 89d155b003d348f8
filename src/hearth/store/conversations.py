"""Conversations and their items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from hearth.core.ids import new_id, unix_now
from hearth.store.db import Database
from hearth.store.models import Conversation, ConversationItem
from hearth.store.pages import Page, PageQuery, owned, paginate


class Conversations:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, metadata: dict[str, Any] | None = None, items: list[dict[str, Any]] | None = None
    ) -> Conversation:
        now = unix_now()
        row = Conversation(id=new_id("conv_"), created_at=now, meta=metadata or {})
        async with self.db.write() as session:
            session.add(row)
            await session.flush()
            session.add_all(_item_rows(row.id, items or [], now))
        return row

    async def get(self, conversation_id: str) -> Conversation | None:
        async with self.db.read() as session:
            return await session.scalar(owned(Conversation, id=conversation_id))

    async def list(self, query: PageQuery) -> Page[Conversation]:
        async with self.db.read() as session:
            return await paginate(session, owned(Conversation), Conversation, query)

    async def set_metadata(
        self, conversation_id: str, metadata: dict[str, Any]
    ) -> Conversation | None:
        async with self.db.write() as session:
            row = await session.scalar(owned(Conversation, id=conversation_id))
            if row is not None:
                row.meta = metadata
        return row

    async def delete(self, conversation_id: str) -> bool:
        async with self.db.write() as session:
            mine = owned(Conversation, only=Conversation.seq, id=conversation_id)
            if await session.scalar(mine) is None:
                return False
            # Items first: SQLite only cascades with its foreign_keys pragma on.
            await session.execute(
                delete(ConversationItem).where(ConversationItem.conversation_id == conversation_id)
            )
            result = await session.execute(
                delete(Conversation).where(Conversation.id == conversation_id)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_items(
        self, conversation_id: str, items: list[dict[str, Any]]
    ) -> list[ConversationItem] | None:
        """Append items (each with its `id` and `type`); None if the conversation is gone."""
        async with self.db.write() as session:
            # The row lock (PostgreSQL) keeps one writer's items together and in order,
            # and a concurrent delete out; SQLite's single writer already does both.
            exists = await session.scalar(
                owned(Conversation, only=Conversation.seq, id=conversation_id).with_for_update()
            )
            if exists is None:
                return None
            rows = _item_rows(conversation_id, items, unix_now())
            session.add_all(rows)
        return rows

    async def present_ids(self, conversation_id: str, ids: list[str]) -> set[str]:
        """Which of these item ids the conversation already holds."""
        async with self.db.read() as session:
            stmt = select(ConversationItem.id).where(
                ConversationItem.conversation_id == conversation_id, ConversationItem.id.in_(ids)
            )
            return set((await session.scalars(stmt)).all())

    async def items(self, conversation_id: str, query: PageQuery) -> Page[ConversationItem]:
        async with self.db.read() as session:
            stmt = owned(ConversationItem, conversation_id=conversation_id)
            return await paginate(session, stmt, ConversationItem, query)

    async def all_items(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every item's data, oldest first: a conversation's context."""
        async with self.db.read() as session:
            stmt = owned(ConversationItem, conversation_id=conversation_id).order_by(
                ConversationItem.seq
            )
            return [row.data for row in (await session.scalars(stmt)).all()]

    async def get_item(self, conversation_id: str, item_id: str) -> ConversationItem | None:
        async with self.db.read() as session:
            stmt = owned(ConversationItem, conversation_id=conversation_id, id=item_id)
            return await session.scalar(stmt)

    async def delete_item(self, conversation_id: str, item_id: str) -> bool:
        async with self.db.write() as session:
            result = await session.execute(
                delete(ConversationItem).where(
                    ConversationItem.conversation_id == conversation_id,
                    ConversationItem.id == item_id,
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _item_rows(conversation_id: str, items: list[dict[str, Any]], now: int) -> list[Any]:
    return [
        ConversationItem(
            id=item["id"],
            conversation_id=conversation_id,
            type=item["type"],
            created_at=now,
            data=item,
        )
        for item in items
    ]
