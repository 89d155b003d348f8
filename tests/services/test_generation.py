"""services/generation.py reports every run to the registry's meter, once, as it closes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hearth.core.errors import Overloaded, QueueTimeout
from hearth.engine.fake import FakeBackend
from hearth.engine.meter import RunReport
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import GenerationRequest
from hearth.services.generation import start_reply
from hearth.services.metrics import Metrics
from tests.conftest import registry_of
from tests.prometheus import value
from tests.services.test_metrics import scrape


def metered(*backends: FakeBackend) -> tuple[ModelRegistry, Metrics]:
    registry = registry_of(*backends)
    metrics = Metrics(registry, max_tokens=4096)
    registry.meter = metrics
    return registry, metrics


async def test_a_run_reports_its_usage_reasons_and_times() -> None:
    registry, metrics = metered(FakeBackend("fake", "one two three four"))
    registry.alias("nick", "fake")
    request = GenerationRequest(model="nick", prompt="a b c", n=2, max_tokens=3)
    run = await start_reply(registry, [request])
    results = await run.collect()
    await run.aclose()
    await run.aclose()  # closing twice reports once
    assert [r.finish_reason for r in results] == ["length", "length"]
    s = scrape(metrics)
    # Under the registered name, whatever alias the client used.
    assert value(s, "hearth_prompt_tokens_total", model="fake") == run.usage.prompt_tokens == 3
    assert value(s, "hearth_generation_tokens_total", model="fake") == 6
    assert value(s, "hearth_requests_finished_total", model="fake", finish_reason="length") == 2
    assert value(s, "hearth_prompt_tokens_total", model="nick") is None
    assert value(s, "hearth_e2e_request_latency_seconds_count", model="fake") == 1
    assert value(s, "hearth_time_to_first_token_seconds_count", model="fake") == 1
    assert value(s, "hearth_request_queue_time_seconds_count", model="fake") == 1
    assert value(s, "hearth_request_params_n_sum", model="fake") == 2
    # Three outputs per choice: two gaps each.
    assert value(s, "hearth_inter_token_latency_seconds_count", model="fake") == 4
    await registry.close()


async def test_a_run_the_client_left_counts_as_cancelled() -> None:
    registry, metrics = metered(FakeBackend("fake", "one two three four"))
    run = await start_reply(registry, [GenerationRequest(model="fake", prompt="hi")])
    async for _ in run.events():
        break
    await run.aclose()
    s = scrape(metrics)
    assert value(s, "hearth_requests_finished_total", model="fake", finish_reason="cancelled") == 1
    assert value(s, "hearth_time_to_first_token_seconds_count", model="fake") == 1
    await registry.close()


class Busy(FakeBackend):
    async def start(self, request: GenerationRequest) -> object:  # type: ignore[override]
        raise Overloaded("every slot is in use and the queue is full", retry_after=1.0)


async def test_a_refused_request_is_counted_and_raised() -> None:
    registry, metrics = metered(Busy("busy"))
    with pytest.raises(Overloaded):
        await start_reply(registry, [GenerationRequest(model="busy", prompt="hi")])
    s = scrape(metrics)
    assert value(s, "hearth_requests_rejected_total", model="busy", reason="queue_full") == 1
    assert value(s, "hearth_e2e_request_latency_seconds_count", model="busy") is None
    await registry.close()


async def test_a_model_that_finds_no_place_in_time_is_counted_as_a_queue_timeout() -> None:
    registry = ModelRegistry(max_loaded=1, queue_timeout=0.05)
    for backend in (FakeBackend("a"), FakeBackend("b")):

        async def load(b: FakeBackend = backend) -> FakeBackend:
            return b

        registry.register(backend.info.name, load)
    metrics = Metrics(registry, max_tokens=4096)
    registry.meter = metrics
    _, release = await registry.acquire("a")
    with pytest.raises(QueueTimeout):
        await start_reply(registry, [GenerationRequest(model="b", prompt="hi")])
    s = scrape(metrics)
    assert value(s, "hearth_requests_rejected_total", model="b", reason="queue_timeout") == 1
    await release()
    await registry.close()


class Faulty:
    def refused(self, model: str, error: Overloaded) -> None:
        raise AssertionError("not refused here")

    def finished(self, model: str, report: RunReport) -> None:
        raise RuntimeError("a bug in the meter")


async def test_a_failing_meter_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_of(FakeBackend("fake", "one two"))
    registry.meter = Faulty()
    run = await start_reply(registry, [GenerationRequest(model="fake", prompt="hi")])
    results = await run.collect()
    with caplog.at_level(logging.ERROR):
        await run.aclose()
    assert results[0].text == "one two"
    assert "recording the metrics of a request failed" in caplog.text
    await registry.close()


async def test_without_a_meter_the_run_is_timed_but_reported_nowhere() -> None:
    registry = registry_of(FakeBackend("fake", "one two"))
    run = await start_reply(registry, [GenerationRequest(model="fake", prompt="hi")])
    await run.collect()
    assert run.metered is None
    clock = run.clock
    assert clock.loaded_ns is not None and clock.admitted_ns is not None
    assert clock.first_output_ns is not None
    assert clock.started_ns <= clock.loaded_ns <= clock.admitted_ns <= clock.first_output_ns
    await run.aclose()
    await registry.close()


class Queued(FakeBackend):
    """Every slot taken: a request waits for one until its caller gives up."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.waiting = asyncio.Event()

    async def start(self, request: GenerationRequest) -> object:  # type: ignore[override]
        self.waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("never admitted")


async def test_a_request_given_up_while_queued_counts_as_cancelled() -> None:
    backend = Queued("queued")
    registry, metrics = metered(backend)
    waiting = asyncio.create_task(
        start_reply(registry, [GenerationRequest(model="queued", prompt="hi", n=2)])
    )
    await backend.waiting.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    s = scrape(metrics)
    name = "hearth_requests_finished_total"
    assert value(s, name, model="queued", finish_reason="cancelled") == 2
    assert value(s, "hearth_request_queue_time_seconds_count", model="queued") == 1
    assert value(s, "hearth_time_to_first_token_seconds_count", model="queued") is None
    assert value(s, "hearth_prompt_tokens_total", model="queued") == 0
    await registry.close()
