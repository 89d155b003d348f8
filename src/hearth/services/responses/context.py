"""A response's context, rebuilt from the store, and its admission to the engine.

With `truncation: "auto"` the oldest turns are dropped until the engine admits the
request; with "disabled" a context that does not fit is a 400 context_length_exceeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hearth.chat.reasoning import effort_control
from hearth.core.errors import ContextLengthExceeded, InvalidRequest, NotFound
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import ChatMessage, GenerationRequest, SamplingParams
from hearth.services.generation import ModelReply, start_reply
from hearth.services.items import to_messages
from hearth.services.profiles import with_profile
from hearth.services.responses.events import rebuilt
from hearth.services.responses.objects import ACTIVE
from hearth.services.responses.params import ResponseParams
from hearth.store import Store


@dataclass
class Context:
    """History turns (oldest first, each a list of items) and the new input items."""

    turns: list[list[dict[str, Any]]] = field(default_factory=list)
    dropped: int = 0  # history items left out to fit


async def chain_turns(store: Store, previous_id: str) -> list[list[dict[str, Any]]]:
    """Each earlier response of the chain, oldest first: its input items and output."""
    turns: list[list[dict[str, Any]]] = []
    current: str | None = previous_id
    while current:
        row = await store.responses.get(current)
        if row is None:
            if current == previous_id:
                raise NotFound(
                    f"Previous response with id '{previous_id}' not found.",
                    param="previous_response_id",
                )
            break  # an older link was deleted: the chain starts after it
        if row.status in ACTIVE:
            raise InvalidRequest(
                f"Previous response with id '{current}' has not finished yet.",
                param="previous_response_id",
            )
        # Ended in the store (cancelled from another server, failed by a sweep), its
        # output is still in its saved steps.
        output = row.output or rebuilt(row, await store.responses.deltas(row.id))[0].output()
        turns.append([*await store.responses.all_input_items(row.id), *output])
        current = row.previous_response_id
    return turns[::-1]


def conversation_turns(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A conversation's items cut into turns, each starting at a user message."""
    turns: list[list[dict[str, Any]]] = []
    for item in items:
        if not turns or (item["type"] == "message" and item["role"] == "user"):
            turns.append([])
        turns[-1].append(item)
    return turns


def generation_request(
    registry: ModelRegistry, params: ResponseParams, messages: list[ChatMessage]
) -> GenerationRequest:
    mode, name = params.engine_tool_choice()
    control = effort_control(params.reasoning_effort)
    request = GenerationRequest(
        think=control.think,
        reasoning_effort=control.effort,
        model=params.model,
        messages=tuple(messages),
        tools=params.engine_tools(),
        tool_choice=mode,
        tool_name=name,
        parallel_tool_calls=params.parallel_tool_calls,
        sampling=SamplingParams(
            temperature=1.0 if params.temperature is None else params.temperature,
            top_p=1.0 if params.top_p is None else params.top_p,
        ),
        max_tokens=params.max_output_tokens,
        grammar=params.grammar(),
        logprobs=params.logprobs,
    )
    explicit = {
        name
        for name, value in (
            ("temperature", params.temperature),
            ("top_p", params.top_p),
            ("max_tokens", params.max_output_tokens),
        )
        if value is not None
    }
    return with_profile(request, registry.profile(params.model), explicit)


async def admit(
    registry: ModelRegistry,
    params: ResponseParams,
    context: Context,
    new_items: list[dict[str, Any]],
) -> ModelReply:
    """Start the generation, dropping the oldest turns while it does not fit (auto)."""
    system = [ChatMessage(role="system", content=params.instructions)] * bool(params.instructions)
    while True:
        history = [item for turn in context.turns for item in turn]
        messages = [*system, *to_messages([*history, *new_items])]
        try:
            return await start_reply(registry, [generation_request(registry, params, messages)])
        except ContextLengthExceeded as exc:
            if params.truncation != "auto" or not context.turns:
                raise ContextLengthExceeded(exc.message, param="input") from None
            context.dropped += len(context.turns.pop(0))
