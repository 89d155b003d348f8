"""Embedding inputs on a model, for every surface that embeds (OpenAI's /v1/embeddings,
Ollama's /api/embed and /api/embeddings).

The model's lease, the surface's own checks against the loaded model, and the registry's
meter are handled here once. Cancelling the caller (the surface does when its client
leaves) cancels the embedding, frees the model, and is metered as "cancelled".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hearth.core.errors import HearthError
from hearth.engine.meter import EmbedOutcome, EmbedReport
from hearth.engine.registry import DEFAULT, KeepAlive, ModelRegistry
from hearth.engine.types import EmbeddingResult, ModelInfo
from hearth.services.limits import current_lease

log = logging.getLogger(__name__)

# A surface's checks of a request against the model that will embed it (its width, its
# vocabulary), raising the client's error before any work is done.
Check = Callable[[ModelInfo], None]


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int
    width: int  # the model's embedding length
    load_ns: int  # from asking for the model until it was loaded


async def embed(
    registry: ModelRegistry,
    model: str,
    inputs: Sequence[str | Sequence[int]],
    *,
    truncate: bool = False,
    keep_alive: KeepAlive = DEFAULT,
    check: Check | None = None,
) -> Embeddings:
    """One vector per input, texts or token ids. No inputs only loads the model (Ollama
    does that with an empty input), and is not metered."""
    started = time.perf_counter_ns()
    async with registry.lease(model, keep_alive) as backend:
        loaded = time.perf_counter_ns()
        info = backend.info
        if check is not None:
            check(info)
        result = EmbeddingResult([], 0)
        if inputs:
            try:
                result = await backend.embed(inputs, truncate=truncate)
            except asyncio.CancelledError:
                _report(registry, model, started, "cancelled")
                raise
            except Exception as exc:
                # An input the model cannot take is the client's mistake, and no work.
                if not (isinstance(exc, HearthError) and exc.status < 500):
                    _report(registry, model, started, "error")
                raise
            _report(registry, model, started, "done", result.prompt_tokens)
    lease = current_lease()
    if lease is not None:  # a limited key's tokens: charged once embedded (never refused)
        lease.charge(result.prompt_tokens)
        await lease.settle()
    return Embeddings(result.vectors, result.prompt_tokens, info.embedding_length, loaded - started)


def _report(
    registry: ModelRegistry, model: str, started_ns: int, outcome: EmbedOutcome, tokens: int = 0
) -> None:
    if registry.meter is None:
        return
    seconds = (time.perf_counter_ns() - started_ns) / 1e9
    try:
        # Under the registered name, whatever alias the client used.
        registry.meter.embedded(registry.resolve(model), EmbedReport(tokens, outcome, seconds))
    except Exception:  # a metrics fault must never fail a request
        log.exception("recording the metrics of an embedding failed")
