"""POST /api/generate: a prompt, through the model's chat template unless `raw`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hearth.api.ollama import convert
from hearth.api.ollama.replies import Clock, Shape, respond
from hearth.api.ollama.schemas import GenerateRequest
from hearth.api.state import State
from hearth.api.streaming import EventStream, unless_disconnected
from hearth.engine.types import GenerationRequest

router = APIRouter()


@router.post("/generate", response_model=None)
async def generate(
    body: GenerateRequest, state: State, request: Request
) -> dict[str, Any] | EventStream:
    clock = Clock()
    name = convert.resolve_model(state, body.model)
    convert.refuse_unsupported(body)
    backend = await unless_disconnected(request, state.registry.get(name))
    clock.mark_loaded()
    shape = Shape(model=body.model, chat=False)
    if not body.prompt:
        return shape.loaded()
    # Ollama renders a prompt as one user turn (after `system`) of the model's template.
    text = body.prompt if body.raw else None
    gen = GenerationRequest(
        model=name,
        prompt=text,
        messages=None if body.raw else convert.generate_messages(body),
        sampling=convert.sampling(body.options, backend.info.context_length),
        stop=convert.stops(body.options),
        max_tokens=convert.max_tokens(body.options),
        logprobs=convert.logprobs(body),
    )
    return await respond(request, state, gen, shape, stream=body.streaming, clock=clock)
