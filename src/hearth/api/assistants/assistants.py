"""/v1/assistants: create, retrieve, modify, delete and list assistants."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hearth.api.assistants.schemas import CreateAssistant
from hearth.api.responses.pages import Page
from hearth.api.state import State
from hearth.services.assistants.params import AssistantParams

router = APIRouter(prefix="/assistants")


@router.post("")
async def create_assistant(body: CreateAssistant, state: State) -> Any:
    return await state.assistants.create_assistant(body)


@router.get("")
async def list_assistants(state: State, page: Page) -> Any:
    return await state.assistants.list_assistants(page)


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, state: State) -> Any:
    return await state.assistants.get_assistant(assistant_id)


@router.post("/{assistant_id}")
async def modify_assistant(assistant_id: str, body: AssistantParams, state: State) -> Any:
    return await state.assistants.modify_assistant(assistant_id, body)


@router.delete("/{assistant_id}")
async def delete_assistant(assistant_id: str, state: State) -> Any:
    return await state.assistants.delete_assistant(assistant_id)
