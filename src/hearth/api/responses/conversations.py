"""/v1/conversations: OpenAI's Conversations API, plus a list of them (a Hearth extension,
for the web chat page's history)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from hearth.api.responses.pages import Page
from hearth.api.state import State

router = APIRouter(prefix="/conversations")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateConversation(_Body):
    # Items and metadata are checked by the service, which names the exact param.
    items: list[Any] | None = None
    metadata: dict[str, Any] | None = None


class UpdateConversation(_Body):
    metadata: dict[str, Any]


class AddItems(_Body):
    items: list[Any]


@router.post("")
async def create_conversation(state: State, body: CreateConversation | None = None) -> Any:
    body = body or CreateConversation()
    return await state.conversations.create(body.metadata, body.items)


@router.get("")
async def list_conversations(state: State, page: Page) -> Any:
    return await state.conversations.list(page)


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: str, state: State) -> Any:
    return await state.conversations.get(conversation_id)


@router.post("/{conversation_id}")
async def update_conversation(conversation_id: str, body: UpdateConversation, state: State) -> Any:
    return await state.conversations.update(conversation_id, body.metadata)


@router.delete("/{conversation_id}")
async def delete_conversation(conversation_id: str, state: State) -> Any:
    return await state.conversations.delete(conversation_id)


@router.post("/{conversation_id}/items")
async def add_items(conversation_id: str, body: AddItems, state: State) -> Any:
    return await state.conversations.add_items(conversation_id, body.items)


@router.get("/{conversation_id}/items")
async def list_items(conversation_id: str, state: State, page: Page) -> Any:
    return await state.conversations.items(conversation_id, page)


@router.get("/{conversation_id}/items/{item_id}")
async def get_item(conversation_id: str, item_id: str, state: State) -> Any:
    return await state.conversations.get_item(conversation_id, item_id)


@router.delete("/{conversation_id}/items/{item_id}")
async def delete_item(conversation_id: str, item_id: str, state: State) -> Any:
    return await state.conversations.delete_item(conversation_id, item_id)
