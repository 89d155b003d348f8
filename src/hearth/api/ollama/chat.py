"""POST /api/chat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hearth.api.ollama import convert
from hearth.api.ollama.replies import Clock, Shape, respond
from hearth.api.ollama.schemas import ChatRequest
from hearth.api.state import State
from hearth.api.streaming import EventStream, unless_disconnected
from hearth.engine.types import GenerationRequest

router = APIRouter()


@router.post("/chat", response_model=None)
async def chat(body: ChatRequest, state: State, request: Request) -> dict[str, Any] | EventStream:
    clock = Clock()
    name = convert.resolve_model(state, body.model)
    convert.refuse_unsupported(body)
    backend = await unless_disconnected(request, state.registry.get(name))
    clock.mark_loaded()
    shape = Shape(model=body.model, chat=True)
    if not body.messages:
        return shape.loaded()
    gen = GenerationRequest(
        model=name,
        messages=tuple(convert.chat_message(m) for m in body.messages),
        sampling=convert.sampling(body.options, backend.info.context_length),
        stop=convert.stops(body.options),
        max_tokens=convert.max_tokens(body.options),
        logprobs=convert.logprobs(body),
    )
    return await respond(request, state, gen, shape, stream=body.streaming, clock=clock)
