"""Conversations: the stored objects, checked and rendered in the API's shapes."""

from __future__ import annotations

from typing import Any

from hearth.core.errors import InvalidRequest, NotFound
from hearth.services.items import check_metadata, normalize_input, refuse_known_ids
from hearth.store import Store
from hearth.store.models import Conversation, ConversationItem
from hearth.store.pages import PageQuery

MAX_ITEMS_PER_CALL = 20


def render(row: Conversation) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "conversation",
        "created_at": row.created_at,
        "metadata": row.meta,
    }


def render_item(row: ConversationItem) -> dict[str, Any]:
    return row.data


def _missing(conversation_id: str, param: str = "conversation_id") -> NotFound:
    return NotFound(f"Conversation with id '{conversation_id}' not found.", param=param)


class ConversationsService:
    def __init__(self, store: Store) -> None:
        self.repo = store.conversations

    async def create(self, metadata: Any, items: Any) -> dict[str, Any]:
        meta = check_metadata(metadata)
        normalized = normalize_input(items or [], "items")
        if len(normalized) > MAX_ITEMS_PER_CALL:
            raise InvalidRequest(
                f"'items' may hold at most {MAX_ITEMS_PER_CALL} items.", param="items"
            )
        return render(await self.repo.create(meta, normalized))

    async def get(self, conversation_id: str, param: str = "conversation_id") -> dict[str, Any]:
        row = await self.repo.get(conversation_id)
        if row is None:
            raise _missing(conversation_id, param)
        return render(row)

    async def list(self, query: PageQuery) -> dict[str, Any]:
        return (await self.repo.list(query)).as_list(render)

    async def update(self, conversation_id: str, metadata: Any) -> dict[str, Any]:
        row = await self.repo.set_metadata(conversation_id, check_metadata(metadata))
        if row is None:
            raise _missing(conversation_id)
        return render(row)

    async def delete(self, conversation_id: str) -> dict[str, Any]:
        if not await self.repo.delete(conversation_id):
            raise _missing(conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, conversation_id: str, items: Any) -> dict[str, Any]:
        normalized = normalize_input(items, "items")
        if not normalized or len(normalized) > MAX_ITEMS_PER_CALL:
            raise InvalidRequest(
                f"'items' must hold 1 to {MAX_ITEMS_PER_CALL} items.", param="items"
            )
        known = await self.repo.present_ids(conversation_id, [i["id"] for i in normalized])
        refuse_known_ids(normalized, known, "items")
        rows = await self.repo.add_items(conversation_id, normalized)
        if rows is None:
            raise _missing(conversation_id)
        data = [render_item(r) for r in rows]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
            "has_more": False,
        }

    async def append(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        """Append already-normalised items (a response's input and output)."""
        if items and await self.repo.add_items(conversation_id, items) is None:
            raise _missing(conversation_id, "conversation")

    async def items(self, conversation_id: str, query: PageQuery) -> dict[str, Any]:
        await self.get(conversation_id)
        return (await self.repo.items(conversation_id, query)).as_list(render_item)

    async def context(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every item, oldest first; a 404 naming `conversation` if there is none."""
        await self.get(conversation_id, param="conversation")
        return await self.repo.all_items(conversation_id)

    async def get_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        await self.get(conversation_id)
        row = await self.repo.get_item(conversation_id, item_id)
        if row is None:
            raise NotFound(f"Item with id '{item_id}' not found.", param="item_id")
        return render_item(row)

    async def delete_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        conversation = await self.get(conversation_id)
        if not await self.repo.delete_item(conversation_id, item_id):
            raise NotFound(f"Item with id '{item_id}' not found.", param="item_id")
        return conversation
