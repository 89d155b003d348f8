"""POST /api/chat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hearth.api.documented import NDJSON_STREAM
from hearth.api.ollama import convert
from hearth.api.ollama.replies import answer
from hearth.api.ollama.schemas import ChatRequest
from hearth.api.state import State
from hearth.api.streaming import EventStream

router = APIRouter()


@router.post("/chat", response_model=None, responses=NDJSON_STREAM)
async def chat(body: ChatRequest, state: State, request: Request) -> dict[str, Any] | EventStream:
    messages = tuple(convert.chat_message(i, m) for i, m in enumerate(body.messages or ()))
    return await answer(request, state, body, chat=True, messages=messages)
