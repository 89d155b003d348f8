"""services/metrics.py: what each recorded fact adds to the exposition, and the engine
gauges read from the model registry at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from hearth import __version__
from hearth.core import principal
from hearth.core.errors import EngineError, Overloaded, QueueTimeout
from hearth.core.principal import Principal
from hearth.engine.fake import FakeBackend
from hearth.engine.meter import EmbedReport, RunReport
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import Usage
from hearth.services.metrics import Metrics, token_buckets
from tests.conftest import registry_of
from tests.prometheus import Samples, parse, value


def scrape(metrics: Metrics) -> Samples:
    return parse(metrics.exposition().decode())


REPORT = RunReport(
    n=2,
    usage=Usage(prompt_tokens=10, completion_tokens=7, cached_tokens=4),
    reasons=("stop", "length"),
    queue=0.004,
    ttft=0.2,
    e2e=1.5,
    token_gaps=(0.003, 0.02, 0.02),
)


def test_a_finished_run_counts_its_tokens_reasons_and_times() -> None:
    metrics = Metrics(ModelRegistry(), max_tokens=4096)
    metrics.finished("m", REPORT)
    metrics.finished("m", REPORT)
    s = scrape(metrics)
    assert value(s, "hearth_prompt_tokens_total", model="m") == 20
    assert value(s, "hearth_generation_tokens_total", model="m") == 14
    assert value(s, "hearth_prompt_tokens_cached_total", model="m") == 8
    assert value(s, "hearth_requests_finished_total", model="m", finish_reason="stop") == 2
    assert value(s, "hearth_requests_finished_total", model="m", finish_reason="length") == 2
    assert value(s, "hearth_time_to_first_token_seconds_count", model="m") == 2
    assert value(s, "hearth_time_to_first_token_seconds_sum", model="m") == 0.4
    ttft_below = value(s, "hearth_time_to_first_token_seconds_bucket", model="m", le="0.1")
    assert ttft_below == 0
    assert value(s, "hearth_time_to_first_token_seconds_bucket", model="m", le="0.25") == 2
    assert value(s, "hearth_inter_token_latency_seconds_count", model="m") == 6
    assert value(s, "hearth_inter_token_latency_seconds_bucket", model="m", le="0.005") == 2
    assert value(s, "hearth_e2e_request_latency_seconds_count", model="m") == 2
    assert value(s, "hearth_request_queue_time_seconds_bucket", model="m", le="0.01") == 2
    assert value(s, "hearth_request_prompt_tokens_sum", model="m") == 20
    assert value(s, "hearth_request_generation_tokens_bucket", model="m", le="10.0") == 2
    assert value(s, "hearth_request_params_n_sum", model="m") == 4
    assert value(s, "hearth_requests_finished_total", model="other", finish_reason="stop") is None


def test_a_run_with_no_output_has_no_first_token_time() -> None:
    metrics = Metrics(ModelRegistry(), max_tokens=4096)
    empty = RunReport(1, Usage(5, 0), ("cancelled",), queue=0.1, ttft=None, e2e=0.1)
    metrics.finished("m", empty)
    s = scrape(metrics)
    assert value(s, "hearth_time_to_first_token_seconds_count", model="m") is None
    assert value(s, "hearth_e2e_request_latency_seconds_count", model="m") == 1
    assert value(s, "hearth_requests_finished_total", model="m", finish_reason="cancelled") == 1


async def test_requests_and_tokens_are_counted_by_key_name_never_the_key() -> None:
    metrics = Metrics(ModelRegistry(), max_tokens=4096)
    team = Principal(name="team-a", key_id="key_123")

    async def request(via: principal.Surface, record: Callable[[], None]) -> None:
        principal.act_as(team, via)
        record()

    await asyncio.create_task(request("openai", lambda: metrics.finished("m", REPORT)))
    await asyncio.create_task(request("ollama", lambda: metrics.finished("m", REPORT)))
    run = RunReport(1, Usage(3, 0), ("cancelled",), queue=0.1, ttft=None, e2e=0.1)
    await asyncio.create_task(request("openai", lambda: metrics.finished("m", run)))
    await asyncio.create_task(request("openai", lambda: metrics.refused("m", Overloaded("full"))))
    vectors = EmbedReport(tokens=6, outcome="done", seconds=0.1)
    await asyncio.create_task(request("openai", lambda: metrics.embedded("e", vectors)))
    metrics.finished("m", REPORT)  # outside any request: the open server's
    s = scrape(metrics)
    requests = "hearth_key_requests_total"
    assert value(s, requests, key="team-a", surface="openai", status="ok") == 2
    assert value(s, requests, key="team-a", surface="ollama", status="ok") == 1
    assert value(s, requests, key="team-a", surface="openai", status="cancelled") == 1
    assert value(s, requests, key="team-a", surface="openai", status="refused") == 1
    assert value(s, requests, key="open", surface="other", status="ok") == 1
    assert value(s, "hearth_key_tokens_total", key="team-a", kind="prompt") == 10 + 10 + 3 + 6
    assert value(s, "hearth_key_tokens_total", key="team-a", kind="completion") == 14
    assert value(s, "hearth_key_tokens_total", key="team-a", kind="cached") == 8
    assert "key_123" not in metrics.exposition().decode()


def test_refusals_are_counted_by_reason() -> None:
    metrics = Metrics(ModelRegistry(), max_tokens=4096)
    metrics.refused("m", Overloaded("the queue is full"))
    metrics.refused("m", QueueTimeout("no slot in time"))
    metrics.refused("m", QueueTimeout("no slot in time"))
    s = scrape(metrics)
    assert value(s, "hearth_requests_rejected_total", model="m", reason="queue_full") == 1
    assert value(s, "hearth_requests_rejected_total", model="m", reason="queue_timeout") == 2


class FullStats(FakeBackend):
    """A backend reporting every number the llama.cpp scheduler does."""

    def stats(self) -> dict[str, int]:
        return {
            "running": 3,
            "waiting": 2,
            "slots": 4,
            "kv_cells": 4096,
            "kv_used": 1024,
            "host_cached": 1,
            "host_cache_bytes": 12345,
        }


async def test_engine_gauges_are_read_at_each_scrape() -> None:
    full = FullStats("full")
    fake = FakeBackend("fake")
    registry = registry_of(full, fake)

    async def broken() -> FakeBackend:
        raise RuntimeError("no such file")

    registry.register("broken", broken)
    metrics = Metrics(registry, max_tokens=4096)
    s = scrape(metrics)
    for name in ("full", "fake", "broken"):
        assert value(s, "hearth_model_state", model=name, state="unloaded") == 1
        assert value(s, "hearth_model_state", model=name, state="loaded") == 0
    assert value(s, "hearth_requests_running", model="full") is None  # nothing loaded yet

    await registry.get("full")
    await registry.get("fake")
    with contextlib.suppress(EngineError):
        await registry.get("broken")
    s = scrape(metrics)
    assert value(s, "hearth_model_state", model="full", state="loaded") == 1
    assert value(s, "hearth_model_state", model="full", state="unloaded") == 0
    assert value(s, "hearth_model_state", model="broken", state="failed") == 1
    assert value(s, "hearth_requests_running", model="full") == 3
    assert value(s, "hearth_requests_waiting", model="full") == 2
    assert value(s, "hearth_slots", model="full") == 4
    assert value(s, "hearth_kv_cache_cells", model="full") == 4096
    assert value(s, "hearth_kv_cache_cells_used", model="full") == 1024
    assert value(s, "hearth_kv_cache_usage_ratio", model="full") == 0.25
    assert value(s, "hearth_host_cache_sequences", model="full") == 1
    assert value(s, "hearth_host_cache_bytes", model="full") == 12345
    # A backend without a KV cache shows what it has, and no ratio.
    assert value(s, "hearth_requests_running", model="fake") == 0
    assert value(s, "hearth_kv_cache_usage_ratio", model="fake") is None

    fake.running = 2  # live: the next scrape sees it
    assert value(scrape(metrics), "hearth_requests_running", model="fake") == 2
    await registry.close()


def test_http_requests_and_websockets() -> None:
    metrics = Metrics(ModelRegistry(), max_tokens=4096)
    metrics.http_request("GET", "/v1/responses/{response_id}", 404, 0.002)
    metrics.http_request("GET", "/v1/responses/{response_id}", 200, 0.003)
    metrics.websocket_opened()
    metrics.websocket_opened()
    metrics.websocket_closed()
    s = scrape(metrics)
    route = "/v1/responses/{response_id}"
    assert value(s, "hearth_http_requests_total", method="GET", route=route, status="404") == 1
    assert value(s, "hearth_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert value(s, "hearth_websocket_connections_total") == 2
    assert value(s, "hearth_websocket_connections_open") == 1


def test_each_app_has_its_own_registry() -> None:
    """Several apps in one process (as in the tests) neither clash nor share counts."""
    first = Metrics(ModelRegistry(), max_tokens=4096)
    second = Metrics(ModelRegistry(), max_tokens=4096)
    first.finished("m", REPORT)
    assert value(scrape(first), "hearth_prompt_tokens_total", model="m") == 10
    assert value(scrape(second), "hearth_prompt_tokens_total", model="m") is None
    s = scrape(second)
    assert value(s, "hearth_info", version=__version__) == 1
    assert any(name == "process_resident_memory_bytes" for name, _ in s)


def test_token_buckets_reach_the_largest_request() -> None:
    assert token_buckets(4096) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    assert token_buckets(16384)[-1] == 20000
    assert token_buckets(1) == [1]
