"""/v1/threads and their messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hearth.api.responses.pages import Page
from hearth.api.state import State
from hearth.services.assistants.params import MessageParams, ModifyParams, ThreadParams

router = APIRouter(prefix="/threads")


@router.post("")
async def create_thread(state: State, body: ThreadParams | None = None) -> Any:
    return await state.assistants.create_thread(body or ThreadParams())


@router.get("/{thread_id}")
async def get_thread(thread_id: str, state: State) -> Any:
    return await state.assistants.get_thread(thread_id)


@router.post("/{thread_id}")
async def modify_thread(thread_id: str, body: ModifyParams, state: State) -> Any:
    return await state.assistants.modify_thread(thread_id, body)


@router.delete("/{thread_id}")
async def delete_thread(thread_id: str, state: State) -> Any:
    return await state.assistants.delete_thread(thread_id)


@router.post("/{thread_id}/messages")
async def create_message(thread_id: str, body: MessageParams, state: State) -> Any:
    return await state.assistants.create_message(thread_id, body)


@router.get("/{thread_id}/messages")
async def list_messages(thread_id: str, state: State, page: Page, run_id: str | None = None) -> Any:
    return await state.assistants.list_messages(thread_id, page, run_id or None)


@router.get("/{thread_id}/messages/{message_id}")
async def get_message(thread_id: str, message_id: str, state: State) -> Any:
    return await state.assistants.get_message(thread_id, message_id)


@router.post("/{thread_id}/messages/{message_id}")
async def modify_message(thread_id: str, message_id: str, body: ModifyParams, state: State) -> Any:
    return await state.assistants.modify_message(thread_id, message_id, body)


@router.delete("/{thread_id}/messages/{message_id}")
async def delete_message(thread_id: str, message_id: str, state: State) -> Any:
    return await state.assistants.delete_message(thread_id, message_id)
