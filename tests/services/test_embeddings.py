"""services/embeddings.py: one embedding path for every surface, checked against the
loaded model, metered once, and cancelled with its caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from hearth.core.errors import ContextLengthExceeded, EngineError, InvalidRequest
from hearth.engine.fake import FakeBackend
from hearth.engine.types import EmbeddingResult, ModelInfo
from hearth.services.embeddings import embed
from tests.conftest import registry_of
from tests.prometheus import value
from tests.services.test_generation import metered
from tests.services.test_metrics import scrape


class Scripted(FakeBackend):
    """Embeds like the fake backend, or fails with `error`, or waits until cancelled."""

    def __init__(self, name: str, error: Exception | None = None, hang: bool = False) -> None:
        super().__init__(name, embedding_length=8)
        self.error = error
        self.hang = hang
        self.started = asyncio.Event()
        self.cancelled = False

    async def embed(
        self, inputs: Sequence[str | Sequence[int]], *, truncate: bool = False
    ) -> EmbeddingResult:
        self.started.set()
        if self.error is not None:
            raise self.error
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return await super().embed(inputs, truncate=truncate)


async def test_vectors_tokens_and_width_and_the_meter_under_the_registered_name() -> None:
    registry, metrics = metered(Scripted("fake"))
    registry.alias("nick", "fake")
    seen: list[ModelInfo] = []
    result = await embed(registry, "nick", ["a b c", "d e"], check=seen.append)
    assert len(result.vectors) == 2 and result.width == 8 == len(result.vectors[0])
    assert result.prompt_tokens == 5
    assert [info.name for info in seen] == ["fake"]
    s = scrape(metrics)
    assert value(s, "hearth_embedding_requests_total", model="fake", outcome="done") == 1
    assert value(s, "hearth_embedding_tokens_total", model="fake") == 5
    assert value(s, "hearth_embedding_latency_seconds_count", model="fake") == 1
    assert value(s, "hearth_embedding_tokens_total", model="nick") is None
    await registry.close()


async def test_a_failed_check_embeds_nothing_and_is_not_counted() -> None:
    backend = Scripted("fake")
    registry, metrics = metered(backend)

    def refuse(info: ModelInfo) -> None:
        raise InvalidRequest("dimensions must be 8", param="dimensions")

    with pytest.raises(InvalidRequest):
        await embed(registry, "fake", ["hi"], check=refuse)
    assert not backend.started.is_set()
    assert (
        value(scrape(metrics), "hearth_embedding_requests_total", model="fake", outcome="done")
        is None
    )
    await registry.close()


async def test_no_inputs_loads_the_model_and_is_not_metered() -> None:
    registry, metrics = metered(Scripted("fake"))
    result = await embed(registry, "fake", [])
    assert result.vectors == [] and result.prompt_tokens == 0 and result.width == 8
    assert registry.loaded("fake") is not None
    assert value(scrape(metrics), "hearth_embedding_latency_seconds_count", model="fake") is None
    await registry.close()


async def test_the_clients_mistake_is_not_counted_an_engine_failure_is() -> None:
    too_long = ContextLengthExceeded("input 0 has too many tokens", param="input")
    registry, metrics = metered(
        Scripted("long", error=too_long), Scripted("broken", error=EngineError("llama.cpp failed"))
    )
    with pytest.raises(ContextLengthExceeded):
        await embed(registry, "long", ["hi"])
    with pytest.raises(EngineError):
        await embed(registry, "broken", ["hi"])
    s = scrape(metrics)
    name = "hearth_embedding_requests_total"
    assert value(s, name, model="long", outcome="error") is None
    assert value(s, "hearth_embedding_latency_seconds_count", model="long") is None
    assert value(s, name, model="broken", outcome="error") == 1
    await registry.close()


async def test_cancelling_the_caller_cancels_the_embedding_and_frees_the_model() -> None:
    backend = Scripted("slow", hang=True)
    registry, metrics = metered(backend)
    task = asyncio.create_task(embed(registry, "slow", ["hi"], keep_alive=0))
    await backend.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.cancelled
    s = scrape(metrics)
    assert value(s, "hearth_embedding_requests_total", model="slow", outcome="cancelled") == 1
    assert value(s, "hearth_embedding_tokens_total", model="slow") == 0
    # The lease is given back: with no keep-alive the model goes at the next reap.
    await registry.reap()
    assert registry.loaded("slow") is None
    await registry.close()


class Faulty:
    def embedded(self, model: str, report: object) -> None:
        raise RuntimeError("a bug in the meter")


async def test_a_failing_meter_never_fails_the_embedding(caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_of(Scripted("fake"))
    registry.meter = Faulty()  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR):
        result = await embed(registry, "fake", ["hi"])
    assert len(result.vectors) == 1
    assert "recording the metrics of an embedding failed" in caplog.text
    await registry.close()
