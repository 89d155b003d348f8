"""The one internal request and the one event stream every surface translates to and from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hearth.chat.types import ChatMessage, Grammar, Tool, ToolCall, ToolCallDelta
from hearth.core.ids import new_id

__all__ = [
    "ChatMessage",
    "EmbeddingResult",
    "FinishReason",
    "Finished",
    "GenerationEvent",
    "GenerationRequest",
    "Grammar",
    "MemberStatus",
    "ModelInfo",
    "Priority",
    "ReasoningDelta",
    "SamplingParams",
    "TokenEvent",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "TopLogprob",
    "Usage",
    "first_unknown_token",
]

FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]
# "batch" work (Message Batches) yields to "interactive" requests: an engine that schedules
# admits interactive ones first and preempts batch sequences to make room for them.
Priority = Literal["interactive", "batch"]


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Per-request sampling. temperature 0 means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    repeat_last_n: int = 64
    logit_bias: dict[int, float] = field(default_factory=dict)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @property
    def penalised(self) -> bool:
        return (
            self.presence_penalty != 0.0
            or self.frequency_penalty != 0.0
            or self.repetition_penalty != 1.0
        )


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What every surface turns its wire request into. Exactly one of messages / prompt /
    prompt_ids."""

    model: str
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    # A prompt the client sent as token ids: decoded as given, never detokenized and
    # tokenized again (which need not give the same ids), nor given a BOS token.
    prompt_ids: tuple[int, ...] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    add_generation_prompt: bool = True
    # A chat template to use instead of the model's own (a derived model's).
    template: str | None = None
    # A GBNF grammar every choice must follow (structured output).
    grammar: Grammar | None = None
    # Functions the model may call. tool_choice: "auto" (the model decides), "none"
    # (tools are neither shown nor parsed), "required" (at least one call), or with
    # `tool_name` set, exactly one call of that function.
    tools: tuple[Tool, ...] = ()
    tool_choice: Literal["auto", "none", "required"] = "auto"
    tool_name: str | None = None
    parallel_tool_calls: bool = True
    # Log-probabilities: None for none, k >= 0 for the sampled token's plus k alternatives.
    logprobs: int | None = None
    # Thinking, for a reasoning model: `think` None leaves it to the model, False turns it
    # off, True on; `reasoning_effort` low | medium | high where the model has levels;
    # `max_reasoning_tokens` closes the reasoning once that many tokens are spent (None:
    # the server's --reasoning-budget). `template_kwargs` are extra variables for the chat
    # template (chat_template_kwargs).
    think: bool | None = None
    reasoning_effort: str | None = None
    max_reasoning_tokens: int | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    # Choices to generate from the one prompt. Choice i samples with seed + i (when a seed
    # is set), so a seeded request gives n different choices, each reproducible.
    n: int = 1
    # Names the request in the engine's logs (a surface may pass its own wire id).
    request_id: str = field(default_factory=lambda: new_id("req_"))
    priority: Priority = "interactive"

    def __post_init__(self) -> None:
        given = (self.messages, self.prompt, self.prompt_ids)
        if sum(part is not None for part in given) != 1:
            raise ValueError("a GenerationRequest has exactly one of messages, prompt, prompt_ids")
        if self.n < 1:
            raise ValueError("n must be at least 1")

    @property
    def calls_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def choice_sampling(self) -> list[SamplingParams]:
        seed = self.sampling.seed
        if seed is None:
            return [self.sampling] * self.n
        return [replace(self.sampling, seed=seed + i) for i in range(self.n)]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0  # of the completion tokens, those a reasoning model thought

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    bytes: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The model's log-probability of one sampled token (before sampling adjustments),
    with the `k` most likely alternatives."""

    token: str
    bytes: bytes
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """New output text of one choice. With logprobs requested there is one event per
    sampled token, whose `text` may be empty (part of a character, or held back as a
    possible stop-string prefix); without, empty events are not sent."""

    text: str
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event of every generation."""

    reason: FinishReason
    usage: Usage
    index: int = 0
    error: str | None = None
    stop: str | None = None  # the stop string that ended a "stop", when one did


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning text of one choice, apart from its answer (services/generation splits a
    reasoning model's text into these and TokenEvents)."""

    text: str
    index: int = 0


GenerationEvent = TokenEvent | ReasoningDelta | ToolCallDelta | Finished


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int


def first_unknown_token(ids: Sequence[int], vocab_size: int) -> int | None:
    """The position of the first id outside a vocabulary of `vocab_size`, or None."""
    return next((i for i, t in enumerate(ids) if not 0 <= t < vocab_size), None)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a surface may show about a served model."""

    name: str
    backend: str
    context_length: int
    embedding_length: int
    vocab_size: int  # token ids run from 0 to vocab_size - 1
    owned_by: str = "hearth"
    created: int = 0
    size_bytes: int = 0  # the weights file's size, for listings
    metadata: dict[str, str] = field(default_factory=dict)
    chat_template: str | None = None
    reasoning: str | None = None  # the family of a model that reasons (chat/reasoning.py)


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One engine of an upstream pool, as /metrics, /health and `hearth models` show it."""

    url: str
    state: str  # "up" | "down"
    in_flight: int
    requests: int
    errors: int
    last_error: str | None = None
