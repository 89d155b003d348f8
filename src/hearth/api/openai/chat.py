"""POST /v1/chat/completions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from hearth.api.documented import SSE_STREAM
from hearth.api.openai.convert import (
    chat_logprobs,
    chat_request,
    explicit,
    reply_meta,
    tool_call_delta,
    tool_calls,
    usage,
    wants_usage,
)
from hearth.api.openai.replies import ChatCompletion, json_reply
from hearth.api.openai.schemas import ChatCompletionRequest
from hearth.api.state import State
from hearth.api.streaming import (
    EventStream,
    openai_sse_ending,
    sse_data,
    unless_disconnected,
    whole_reply,
)
from hearth.core.ids import new_id
from hearth.engine.types import Finished, ReasoningDelta, ToolCallDelta, Usage
from hearth.services.failures import engine_failure
from hearth.services.generation import ChoiceResult, ModelReply, start_reply
from hearth.services.profiles import with_profile

router = APIRouter()


@router.post("/chat/completions", response_model=ChatCompletion, responses=SSE_STREAM)
async def create_chat_completion(
    body: ChatCompletionRequest, state: State, request: Request
) -> Response:
    profile = state.registry.profile(body.model)
    completion_id = new_id("chatcmpl-")
    gen_request = replace(
        with_profile(chat_request(body), profile, explicit(body)), request_id=completion_id
    )
    n = gen_request.n
    run = await unless_disconnected(request, start_reply(state.registry, [gen_request]))
    meta = reply_meta(completion_id, body.model)
    if body.stream:
        return EventStream(
            _stream(run, meta, n, wants_usage(body)), on_close=run.aclose, ending=openai_sse_ending
        )
    results = await whole_reply(request, run)
    return json_reply(chat_completion(meta, results, run.usage, gen_request.logprobs is not None))


def chat_completion(
    meta: dict[str, Any], results: list[ChoiceResult], total: Usage, wants_logprobs: bool
) -> ChatCompletion:
    """A whole chat completion, from its choices run to the end."""
    return ChatCompletion.model_validate(
        {
            **meta,
            "object": "chat.completion",
            "choices": [
                {
                    "index": r.index,
                    "message": _message(r),
                    "logprobs": chat_logprobs(r.logprobs) if wants_logprobs else None,
                    "finish_reason": r.finish_reason,
                }
                for r in results
            ],
            "usage": usage(total),
        }
    )


def _message(result: ChoiceResult) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.text,
        "refusal": None,
        "annotations": [],
    }
    if result.tool_calls:
        # the text around calls is usually a newline or two, which is not an answer
        message["content"] = result.text if result.text.strip() else None
        message["tool_calls"] = tool_calls(result.tool_calls)
    if result.reasoning:
        message["reasoning_content"] = message["reasoning"] = result.reasoning
    return message


async def _stream(
    run: ModelReply, meta: dict[str, Any], n: int, include_usage: bool
) -> AsyncIterator[bytes]:
    base = {**meta, "object": "chat.completion.chunk"}
    if include_usage:
        base["usage"] = None

    def chunk(
        index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
    ) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return sse_data({**base, "choices": [choice]})

    # The role chunks go out in one write with the first output's chunk: the client
    # wakes once for both (a pool member's first output is read before the reply starts,
    # so they would otherwise be two writes back to back).
    held = b"".join(chunk(index, {"role": "assistant", "content": ""}) for index in range(n))
    async for index, event in run.events():
        if isinstance(event, Finished):
            if event.reason == "error":
                yield held + openai_sse_ending(engine_failure(event))
                return
            out = chunk(index, {}, event.reason)
        elif isinstance(event, ToolCallDelta):
            out = chunk(index, {"tool_calls": [tool_call_delta(event)]})
        elif isinstance(event, ReasoningDelta):
            out = chunk(index, {"reasoning_content": event.text, "reasoning": event.text})
        elif event.logprobs:
            out = chunk(index, {"content": event.text}, logprobs=chat_logprobs(event.logprobs))
        else:
            out = chunk(index, {"content": event.text})
        yield held + out
        held = b""
    if include_usage:
        held += sse_data({**base, "choices": [], "usage": usage(run.usage)})
    yield held + sse_data("[DONE]")
