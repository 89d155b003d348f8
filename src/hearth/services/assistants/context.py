"""A run's prompt, rebuilt from the store at each start (the first, and after each
submission of tool outputs): instructions, the thread's messages (truncated as the run
says), then what the run itself produced so far (its replies, its calls and their
outputs). Nothing about a run's progress lives only in memory, so a run paused in
`requires_action` continues on any server, also after a restart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hearth.core.errors import ContextLengthExceeded
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import ChatMessage, GenerationRequest, SamplingParams, ToolCall
from hearth.services.assistants.objects import message_text
from hearth.services.assistants.params import check_tool_choice, engine_tools, response_grammar
from hearth.services.generation import ModelReply, start_reply
from hearth.services.profiles import with_profile
from hearth.store import Store
from hearth.store.models import Run


@dataclass
class Prompt:
    system: list[ChatMessage]
    history: list[ChatMessage]  # the thread's messages, oldest first: what truncation drops
    tail: list[ChatMessage] = field(default_factory=list)  # this run's own output so far

    @property
    def messages(self) -> list[ChatMessage]:
        return [*self.system, *self.history, *self.tail]


async def build_prompt(store: Store, run: Run) -> Prompt:
    data = run.data
    system = [ChatMessage(role="system", content=data["instructions"])] * bool(data["instructions"])
    rows = await store.threads.messages.all(thread_id=run.thread_id)
    history = [
        ChatMessage(role=row.data["role"], content=message_text(row))
        for row in rows
        if row.run_id != run.id
    ]
    strategy = data["truncation_strategy"]
    if strategy["type"] == "last_messages":
        history = history[-strategy["last_messages"] :]
    own = {row.id: row for row in rows if row.run_id == run.id}
    tail: list[ChatMessage] = []
    for step in await store.threads.steps.all(run_id=run.id):
        details = step.data["step_details"]
        if details["type"] == "message_creation":
            message = own.get(details["message_creation"]["message_id"])
            if message is not None:
                tail.append(ChatMessage(role="assistant", content=message_text(message)))
            continue
        calls = [c for c in details["tool_calls"] if c["function"].get("output") is not None]
        if not calls:
            continue
        tail.append(
            ChatMessage(
                role="assistant",
                tool_calls=tuple(
                    ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
                    for c in calls
                ),
            )
        )
        tail += [
            ChatMessage(role="tool", content=c["function"]["output"], tool_call_id=c["id"])
            for c in calls
        ]
    return Prompt(system=system, history=history, tail=tail)


def generation_request(
    registry: ModelRegistry, run: Run, prompt: Prompt, max_tokens: int | None
) -> GenerationRequest:
    data = run.data
    mode, name = check_tool_choice(data["tool_choice"], data["tools"])
    if mode == "required" and any(m.role == "tool" for m in prompt.tail):
        # A required (or named) call has been made and answered: now the model may reply.
        mode, name = "auto", None
    request = GenerationRequest(
        model=data["model"],
        messages=tuple(prompt.messages),
        tools=engine_tools(data["tools"]),
        tool_choice=mode,
        tool_name=name,
        parallel_tool_calls=data["parallel_tool_calls"],
        sampling=SamplingParams(
            temperature=1.0 if data["temperature"] is None else data["temperature"],
            top_p=1.0 if data["top_p"] is None else data["top_p"],
        ),
        max_tokens=max_tokens,
        grammar=response_grammar(data["response_format"]),
        request_id=run.id,
    )
    explicit = {
        key
        for key, value in (
            ("temperature", data["temperature"]),
            ("top_p", data["top_p"]),
            ("max_tokens", max_tokens),
        )
        if value is not None
    }
    return with_profile(request, registry.profile(data["model"]), explicit)


class PromptTooLong(Exception):
    """Over `max_prompt_tokens` even after truncation: the run ends incomplete."""


async def admit(
    registry: ModelRegistry, run: Run, prompt: Prompt, max_tokens: int | None
) -> ModelReply:
    """Start the generation. With truncation `auto`, the oldest messages are dropped (the
    newest is always kept) while the prompt is over the context or `max_prompt_tokens`."""
    auto = run.data["truncation_strategy"]["type"] == "auto"
    limit: Any = run.data["max_prompt_tokens"]
    while True:
        request = generation_request(registry, run, prompt, max_tokens)
        try:
            reply = await start_reply(registry, [request])
        except ContextLengthExceeded:
            if auto and len(prompt.history) > 1:
                prompt.history.pop(0)
                continue
            raise
        if limit is None or reply.generations[0].prompt_tokens <= limit:
            return reply
        await reply.aclose()
        if auto and len(prompt.history) > 1:
            prompt.history.pop(0)
            continue
        raise PromptTooLong()
