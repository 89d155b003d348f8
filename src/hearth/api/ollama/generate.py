"""POST /api/generate: a prompt, through the model's chat template unless `raw`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hearth.api.documented import NDJSON_STREAM
from hearth.api.ollama import convert
from hearth.api.ollama.replies import answer
from hearth.api.ollama.schemas import GenerateRequest
from hearth.api.state import State
from hearth.api.streaming import EventStream

router = APIRouter()


@router.post("/generate", response_model=None, responses=NDJSON_STREAM)
async def generate(
    body: GenerateRequest, state: State, request: Request
) -> dict[str, Any] | EventStream:
    if not body.prompt or body.raw:
        return await answer(request, state, body, chat=False, messages=None, prompt=body.prompt)
    # Ollama renders a prompt as one user turn (after `system`) of the model's template.
    messages = convert.generate_messages(body)
    return await answer(request, state, body, chat=False, messages=messages)
