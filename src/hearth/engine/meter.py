"""What the registry carries for whoever records how generations and embeddings went
(Prometheus in services/metrics.py, the usage log in services/usage.py; `Meters` tells
both). Every request acquires its model from the registry, so the code that runs one
finds the meter there without each surface handing it along."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from hearth.core.errors import Overloaded
from hearth.engine.types import FinishReason, Usage

log = logging.getLogger(__name__)

EmbedOutcome = Literal["done", "cancelled", "error"]
# How a request went, as the usage log and the per-key counters show it: "refused" had
# no slot (429/503); "cancelled": the client left; "error": the engine failed.
Status = Literal["ok", "cancelled", "error", "refused"]


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

    @property
    def status(self) -> Status:
        """An engine failure on any choice is an error; else one left is cancelled."""
        if "error" in self.reasons:
            return "error"
        return "cancelled" if "cancelled" in self.reasons else "ok"


@dataclass(frozen=True, slots=True)
class EmbedReport:
    """One request's embeddings. `seconds` runs from asking for the model to the vectors
    (or to the end of the attempt); `tokens` is 0 unless it is "done"."""

    tokens: int
    outcome: EmbedOutcome
    seconds: float

    @property
    def status(self) -> Status:
        return "ok" if self.outcome == "done" else self.outcome


class RunMeter(Protocol):
    def refused(self, model: str, error: Overloaded) -> None:
        """No slot for a request: the queue was full (429) or it waited too long (503)."""
        ...

    def finished(self, model: str, report: RunReport) -> None: ...

    def embedded(self, model: str, report: EmbedReport) -> None: ...


class Meters:
    """Several meters told the same facts, each on its own: a fault in one (logged) never
    keeps the others from recording, nor reaches the request."""

    def __init__(self, *meters: RunMeter) -> None:
        self.meters = meters

    def refused(self, model: str, error: Overloaded) -> None:
        self._each("refused", model, error)

    def finished(self, model: str, report: RunReport) -> None:
        self._each("finished", model, report)

    def embedded(self, model: str, report: EmbedReport) -> None:
        self._each("embedded", model, report)

    def _each(self, method: str, model: str, fact: object) -> None:
        for meter in self.meters:
            try:
                getattr(meter, method)(model, fact)
            except Exception:
                log.exception("%s failed to record a request", type(meter).__name__)
