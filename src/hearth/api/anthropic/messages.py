"""POST /v1/messages and /v1/messages/count_tokens."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hearth.api.anthropic.convert import explicit, generation_request, message
from hearth.api.anthropic.replies import Message, MessageTokensCount
from hearth.api.anthropic.schemas import MessageCountRequest, MessageRequest
from hearth.api.anthropic.stream import message_stream
from hearth.api.documented import SSE_STREAM
from hearth.api.errors import new_request_id
from hearth.api.state import AppState, State
from hearth.api.streaming import (
    EventStream,
    anthropic_sse_ending,
    unless_disconnected,
    whole_reply,
)
from hearth.core.errors import ContextLengthExceeded
from hearth.core.ids import new_id
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
    run = await unless_disconnected(request, _start(state, gen_request))
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


async def _start(state: AppState, gen_request: GenerationRequest) -> ModelReply:
    try:
        return await start_reply(state.registry, [gen_request])
    except ContextLengthExceeded as exc:
        if exc.param != "max_tokens":
            raise  # the prompt itself does not fit
    # max_tokens is a ceiling, and Claude Code asks for 32000 whatever the model: the rest
    # of the context is then the most the reply can have (llama-server and Ollama do so).
    return await start_reply(state.registry, [replace(gen_request, max_tokens=None)])


@router.post("/messages/count_tokens", response_model=MessageTokensCount)
async def count_tokens(body: MessageCountRequest, state: State, request: Request) -> Response:
    """The prompt's tokens exactly as /v1/messages would decode them for the same body: the
    same conversion, the same profile, counted by the model's own template and tokenizer."""
    profile = state.registry.profile(body.model)
    gen_request = with_profile(generation_request(body), profile, set())
    count: int = await unless_disconnected(request, count_prompt(state.registry, gen_request))
    return JSONResponse({"input_tokens": count}, headers=_headers())
