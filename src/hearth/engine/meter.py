"""What the registry carries for whoever records how generations and embeddings went
(Prometheus, in services/metrics.py). Every request acquires its model from the registry,
so the code that runs one finds the meter there without each surface handing it along."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from hearth.core.errors import Overloaded
from hearth.engine.types import FinishReason, Usage

EmbedOutcome = Literal["done", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class RunReport:
    """One request's generations, from the moment it asked for its model until it closed.

    Times are seconds. `ttft` is None when nothing was output; `token_gaps` are the
    intervals between successive outputs of each choice (usually one token each).
    `reasons` holds one finish reason per choice: "cancelled" for a choice the client
    left before it finished."""

    n: int
    usage: Usage
    reasons: Sequence[FinishReason]
    queue: float
    ttft: float | None
    e2e: float
    token_gaps: Sequence[float] = ()


@dataclass(frozen=True, slots=True)
class EmbedReport:
    """One request's embeddings. `seconds` runs from asking for the model to the vectors
    (or to the end of the attempt); `tokens` is 0 unless it is "done"."""

    tokens: int
    outcome: EmbedOutcome
    seconds: float


class RunMeter(Protocol):
    def refused(self, model: str, error: Overloaded) -> None:
        """No slot for a request: the queue was full (429) or it waited too long (503)."""
        ...

    def finished(self, model: str, report: RunReport) -> None: ...

    def embedded(self, model: str, report: EmbedReport) -> None: ...
