"""POST /v1/completions (the legacy text completion API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from hearth.api.documented import SSE_STREAM
from hearth.api.openai.convert import (
    completion_logprobs,
    explicit,
    reply_meta,
    sampling,
    usage,
    wants_usage,
)
from hearth.api.openai.prompts import Prompt, check_vocabulary, parse_prompts
from hearth.api.openai.replies import Completion, json_reply
from hearth.api.openai.schemas import CompletionRequest
from hearth.api.state import AppState, State
from hearth.api.streaming import (
    EventStream,
    openai_sse_ending,
    sse_data,
    unless_disconnected,
    whole_reply,
)
from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id
from hearth.engine.types import Finished, GenerationRequest, Usage
from hearth.services.failures import engine_failure
from hearth.services.generation import ChoiceResult, ModelReply, start_reply
from hearth.services.profiles import with_profile

router = APIRouter()


async def _echoes(state: AppState, body: CompletionRequest, prompts: list[Prompt]) -> list[str]:
    """The text each prompt echoes. Token-id prompts are checked against the model's
    vocabulary here, where the 400 can name the id's place in the request, and echo the
    text of their ids, as OpenAI does."""
    if all(p.ids is None for p in prompts):
        return [p.text or "" for p in prompts] if body.echo else [""] * len(prompts)
    async with state.registry.lease(body.model) as backend:
        check_vocabulary(prompts, backend.info.vocab_size)
        if not body.echo:
            return [""] * len(prompts)
        return [
            (p.text or "") if p.ids is None else await backend.detokenize(p.ids) for p in prompts
        ]


@router.post("/completions", response_model=Completion, responses=SSE_STREAM)
async def create_completion(body: CompletionRequest, state: State, request: Request) -> Response:
    if body.suffix:
        raise InvalidRequest("'suffix' (fill-in-the-middle) is not supported.", param="suffix")
    if body.logprobs is not None and body.echo:
        raise InvalidRequest(
            "'logprobs' together with 'echo' (prompt log-probabilities) is not supported.",
            param="echo",
        )
    prompts = parse_prompts(body.prompt, "prompt")
    echoed = await _echoes(state, body, prompts)
    n = body.n or 1
    params = sampling(body)
    profile = state.registry.profile(body.model)
    requests = []
    for prompt in prompts:
        one = GenerationRequest(
            model=body.model,
            prompt=prompt.text,
            prompt_ids=prompt.ids,
            sampling=params,
            stop=body.stops(),
            max_tokens=body.max_tokens,
            n=n,
            logprobs=body.logprobs,
        )
        one = with_profile(one, profile, explicit(body))
        # The legacy API's default length, unless the client or a profile chose one.
        requests.append(one if one.max_tokens is not None else replace(one, max_tokens=16))
    run = await unless_disconnected(request, start_reply(state.registry, requests))
    echoes = [echoed[i // n] for i in range(len(prompts) * n)]
    meta = reply_meta(new_id("cmpl-"), body.model, object="text_completion")
    if body.stream:
        return EventStream(
            _stream(run, meta, echoes, wants_usage(body)),
            on_close=run.aclose,
            ending=openai_sse_ending,
        )
    results = await whole_reply(request, run)
    return json_reply(text_completion(meta, results, run.usage, echoes, body.logprobs is not None))


def text_completion(
    meta: dict[str, Any],
    results: list[ChoiceResult],
    total: Usage,
    echoes: list[str],
    wants_logprobs: bool,
) -> Completion:
    """A whole text completion; each choice's text after its prompt's echo."""
    return Completion.model_validate(
        {
            **meta,
            "choices": [
                {
                    "index": r.index,
                    "text": echoes[r.index] + r.text,
                    "logprobs": completion_logprobs(r.logprobs, 0) if wants_logprobs else None,
                    "finish_reason": r.finish_reason,
                }
                for r in results
            ],
            "usage": usage(total),
        }
    )


async def _stream(
    run: ModelReply, meta: dict[str, Any], echoes: list[str], include_usage: bool
) -> AsyncIterator[bytes]:
    base = dict(meta)
    if include_usage:
        base["usage"] = None

    offsets = [len(echo) for echo in echoes]

    def chunk(index: int, text: str, finish: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}
        return sse_data({**base, "choices": [choice]})

    for index, echo in enumerate(echoes):
        if echo:
            yield chunk(index, echo)
    async for index, event in run.events():
        if isinstance(event, Finished):
            if event.reason == "error":
                yield openai_sse_ending(engine_failure(event))
                return
            yield chunk(index, "", event.reason)
        elif event.logprobs:
            lp = completion_logprobs(event.logprobs, offsets[index])
            offsets[index] += sum(len(e.token) for e in event.logprobs)
            yield chunk(index, event.text, logprobs=lp)
        else:
            yield chunk(index, event.text)
    if include_usage:
        yield sse_data({**base, "choices": [], "usage": usage(run.usage)})
    yield sse_data("[DONE]")
