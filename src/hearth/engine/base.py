"""The Backend protocol: what the registry hands to surfaces and services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from hearth.engine.types import (
    EmbeddingResult,
    GenerationEvent,
    GenerationRequest,
    MemberStatus,
    ModelInfo,
)


class Generation(Protocol):
    """A generation that has been admitted to the engine: the request's `n` choices.

    Iterating yields TokenEvents and Finished events tagged with their choice `index`, and
    ends after one Finished per choice. `aclose()` (or cancelling the task that iterates)
    cancels every choice and frees their slots at the next step.
    """

    prompt_tokens: int

    def __aiter__(self) -> AsyncIterator[GenerationEvent]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """One loaded model."""

    @property
    def info(self) -> ModelInfo: ...

    async def start(self, request: GenerationRequest) -> Generation:
        """Validate, tokenize and wait for admission. Everything a client must hear about
        as an HTTP error (context too long, queue full, queue timeout) is raised here,
        before the first byte of a response."""
        ...

    async def embed(
        self, inputs: Sequence[str | Sequence[int]], *, truncate: bool = False
    ) -> EmbeddingResult:
        """One vector per input, a text or token ids (embedded as given). An id outside
        the vocabulary raises InvalidRequest; an input over the model's embedding limit
        raises ContextLengthExceeded, or with `truncate` is cut to its first tokens."""
        ...

    async def tokenize(self, text: str) -> list[int]: ...

    async def prompt_tokens(self, request: GenerationRequest) -> int:
        """How many tokens `start(request)` would decode as its prompt (chat template,
        tools and all), without starting anything."""
        ...

    async def detokenize(self, ids: Sequence[int]) -> str:
        """The text of token ids (special tokens written out), all within the vocabulary."""
        ...

    def stats(self) -> dict[str, int]:
        """Live numbers for /health: running and waiting sequences."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Pooled(Protocol):
    """A backend that sends requests on to a pool of engines (engine/upstream)."""

    def members(self) -> tuple[MemberStatus, ...]:
        """Each engine's state, in-flight requests and errors, for /metrics and /health."""
        ...
