"""POST /v1/messages and /v1/messages/count_tokens."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hearth.api.anthropic.convert import explicit, generation_request, message
from hearth.api.anthropic.replies import Message, MessageTokensCount
from hearth.api.anthropic.schemas import MessageCountRequest, MessageRequest
from hearth.api.anthropic.stream import message_stream
from hearth.api.documented import SSE_STREAM
from hearth.api.errors import new_request_id, validation_error
from hearth.api.state import State
from hearth.api.streaming import (
    EventStream,
    anthropic_sse_ending,
    unless_disconnected,
    whole_reply,
)
from hearth.core.errors import ContextLengthExceeded
from hearth.core.ids import new_id
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import GenerationRequest
from hearth.services.generation import ModelReply, count_prompt, start_reply
from hearth.services.profiles import with_profile

router = APIRouter()


def _headers() -> dict[str, str]:
    return {"request-id": new_request_id()}


@router.post("/messages", response_model=Message, responses=SSE_STREAM)
async def create_message(body: MessageRequest, state: State, request: Request) -> Response:
    profile = state.registry.profile(body.model)
    message_id = new_id("msg_")
    gen_request = replace(
        with_profile(generation_request(body), profile, explicit(body)), request_id=message_id
    )
    run = await unless_disconnected(request, _start(state.registry, gen_request))
    run.call_id_prefix = "toolu_"
    if body.stream:
        return EventStream(
            message_stream(run, message_id, body.model),
            headers=_headers(),
            on_close=run.aclose,
            ending=anthropic_sse_ending,
        )
    results = await whole_reply(request, run)
    return JSONResponse(message(message_id, body.model, results[0], run.usage), headers=_headers())


async def _start(registry: ModelRegistry, gen_request: GenerationRequest) -> ModelReply:
    try:
        return await start_reply(registry, [gen_request])
    except ContextLengthExceeded as exc:
        if exc.param != "max_tokens":
            raise  # the prompt itself does not fit
    # max_tokens is a ceiling, and Claude Code asks for 32000 whatever the model: the rest
    # of the context is then the most the reply can have (llama-server and Ollama do so).
    return await start_reply(registry, [replace(gen_request, max_tokens=None)])


async def batch_message(registry: ModelRegistry, params: dict[str, Any]) -> dict[str, Any]:
    """One request of a Message Batch, as /v1/messages answers it without streaming, at
    batch priority (it yields to interactive requests); raises the error it would get."""
    try:
        body = MessageRequest.model_validate(params)
    except ValidationError as exc:
        raise validation_error(exc) from None
    message_id = new_id("msg_")
    profile = registry.profile(body.model)
    gen_request = with_profile(generation_request(body), profile, explicit(body))
    run = await _start(registry, replace(gen_request, request_id=message_id, priority="batch"))
    run.call_id_prefix = "toolu_"
    try:
        results = await run.collect()
    finally:
        await run.aclose()
    return message(message_id, body.model, results[0], run.usage)


@router.post("/messages/count_tokens", response_model=MessageTokensCount)
async def count_tokens(body: MessageCountRequest, state: State, request: Request) -> Response:
    """The prompt's tokens exactly as /v1/messages would decode them for the same body: the
    same conversion, the same profile, counted by the model's own template and tokenizer."""
    profile = state.registry.profile(body.model)
    gen_request = with_profile(generation_request(body), profile, set())
    count: int = await unless_disconnected(request, count_prompt(state.registry, gen_request))
    return JSONResponse({"input_tokens": count}, headers=_headers())
