"""Prometheus metrics: what an operator scrapes from GET /metrics.

One `Metrics` per app, with its own CollectorRegistry (never prometheus_client's global
one: a process may run several apps). Request metrics are pushed as requests end (by
services/generation.py and services/embeddings.py through the model registry's meter, and
by the HTTP middleware); engine numbers (slots, queue, KV cache) are read from the model
registry at scrape time. Names follow vLLM's `vllm:*` and llama-server's `llamacpp:*` with
the prefix `hearth_`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hearth import __version__
from hearth.core import principal
from hearth.core.errors import Overloaded, QueueTimeout
from hearth.engine.meter import EmbedReport, RunReport, Status
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import Usage

# The classic text format, which generate_latest writes and every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

UNMATCHED = "unmatched"  # the route label of a path no route serves

MODEL_STATES = ("unloaded", "loading", "loaded", "failed")

# vLLM's buckets: for time to first token as they are, the others with finer ones below
# theirs, since a small model on a CPU answers within milliseconds.
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TOKEN_GAP_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
    0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
HTTP_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
)  # fmt: skip
N_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 128)


def token_buckets(limit: int) -> list[float]:
    """1, 2, 5, 10, 20, 50, … up to the first at or past `limit` (vLLM's 1-2-5 buckets)."""
    out: list[float] = []
    scale = 1
    while True:
        for step in (1, 2, 5):
            out.append(float(step * scale))
            if step * scale >= limit:
                return out
        scale *= 10


class Metrics:
    def __init__(self, models: ModelRegistry, max_tokens: int) -> None:
        """`max_tokens`: the most tokens one request may hold (the KV-cache size), which
        bounds the buckets of the per-request token histograms."""
        self.collectors = CollectorRegistry()
        reg = self.collectors
        model = ["model"]
        Info("hearth", "The Hearth version serving.", registry=reg).info({"version": __version__})
        self.prompt_tokens = Counter(
            "hearth_prompt_tokens", "Prompt tokens processed.", model, registry=reg
        )
        self.generation_tokens = Counter(
            "hearth_generation_tokens", "Tokens generated.", model, registry=reg
        )
        self.cached_tokens = Counter(
            "hearth_prompt_tokens_cached",
            "Prompt tokens found in the KV cache (a reused prefix), not computed again.",
            model,
            registry=reg,
        )
        self.finished_choices = Counter(
            "hearth_requests_finished",
            "Finished requests by finish reason, one per choice (n choices count n); "
            "'cancelled': the client left first (also while it waited for a slot).",
            ["model", "finish_reason"],
            registry=reg,
        )
        self.rejected = Counter(
            "hearth_requests_rejected",
            "Requests turned away for want of a slot: reason 'queue_full' (429) or "
            "'queue_timeout' (waited past --queue-timeout, 503).",
            ["model", "reason"],
            registry=reg,
        )
        self.ttft = Histogram(
            "hearth_time_to_first_token_seconds",
            "From asking for the model (queue and load included) to the first output.",
            model,
            buckets=TTFT_BUCKETS,
            registry=reg,
        )
        self.token_gap = Histogram(
            "hearth_inter_token_latency_seconds",
            "Between successive outputs of one choice (usually one token each).",
            model,
            buckets=TOKEN_GAP_BUCKETS,
            registry=reg,
        )
        self.e2e = Histogram(
            "hearth_e2e_request_latency_seconds",
            "From asking for the model to the end of the request's generations.",
            model,
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.queue_time = Histogram(
            "hearth_request_queue_time_seconds",
            "From asking for the model to a slot for every choice (a model load included).",
            model,
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        per_request = token_buckets(max_tokens)
        self.request_prompt_tokens = Histogram(
            "hearth_request_prompt_tokens",
            "Prompt tokens per request.",
            model,
            buckets=per_request,
            registry=reg,
        )
        self.request_generation_tokens = Histogram(
            "hearth_request_generation_tokens",
            "Tokens generated per request, all choices together.",
            model,
            buckets=per_request,
            registry=reg,
        )
        self.request_n = Histogram(
            "hearth_request_params_n",
            "Choices asked for per request (the n parameter).",
            model,
            buckets=N_BUCKETS,
            registry=reg,
        )
        self.embeddings = Counter(
            "hearth_embedding_requests",
            "Embedding requests by outcome: 'done', 'cancelled' (the client left first) or "
            "'error' (the engine failed).",
            ["model", "outcome"],
            registry=reg,
        )
        self.embedding_tokens = Counter(
            "hearth_embedding_tokens", "Input tokens embedded.", model, registry=reg
        )
        self.embedding_latency = Histogram(
            "hearth_embedding_latency_seconds",
            "From asking for the model (a load included) to the vectors.",
            model,
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.http_requests = Counter(
            "hearth_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.http_duration = Histogram(
            "hearth_http_request_duration_seconds",
            "From the request's arrival to the end of its response (a whole stream).",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.websockets = Counter(
            "hearth_websocket_connections", "WebSocket connections accepted.", registry=reg
        )
        self.websockets_open = Gauge(
            "hearth_websocket_connections_open", "WebSocket connections open now.", registry=reg
        )
        # By the key's name (the Principal's, never the key): bounded by the keys an
        # operator made, and "static" / "open" for --api-key keys and an open server.
        self.key_requests = Counter(
            "hearth_key_requests",
            "Requests by API key name, surface and status: 'ok', 'cancelled' (the client "
            "left), 'error' (the engine failed) or 'refused' (no slot: 429/503).",
            ["key", "surface", "status"],
            registry=reg,
        )
        self.key_tokens = Counter(
            "hearth_key_tokens",
            "Tokens by API key name and kind: 'prompt' (embedded inputs too), 'completion', "
            "'cached' (prompt tokens found in the KV cache).",
            ["key", "kind"],
            registry=reg,
        )
        reg.register(EngineCollector(models))
        reg.register(PoolCollector(models))
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)

    # ---- the model registry's meter (engine/meter.py) ---------------------------------

    def refused(self, model: str, error: Overloaded) -> None:
        reason = "queue_timeout" if isinstance(error, QueueTimeout) else "queue_full"
        self.rejected.labels(model, reason).inc()
        self._by_key("refused", Usage(0, 0))

    def finished(self, model: str, report: RunReport) -> None:
        usage = report.usage
        self.prompt_tokens.labels(model).inc(usage.prompt_tokens)
        self.generation_tokens.labels(model).inc(usage.completion_tokens)
        self.cached_tokens.labels(model).inc(usage.cached_tokens)
        for reason in report.reasons:
            self.finished_choices.labels(model, reason).inc()
        if report.ttft is not None:
            self.ttft.labels(model).observe(report.ttft)
        gaps = self.token_gap.labels(model)
        for gap in report.token_gaps:
            gaps.observe(gap)
        self.e2e.labels(model).observe(report.e2e)
        self.queue_time.labels(model).observe(report.queue)
        self.request_prompt_tokens.labels(model).observe(usage.prompt_tokens)
        self.request_generation_tokens.labels(model).observe(usage.completion_tokens)
        self.request_n.labels(model).observe(report.n)
        self._by_key(report.status, usage)

    def embedded(self, model: str, report: EmbedReport) -> None:
        self.embeddings.labels(model, report.outcome).inc()
        self.embedding_tokens.labels(model).inc(report.tokens)
        self.embedding_latency.labels(model).observe(report.seconds)
        self._by_key(report.status, Usage(report.tokens, 0))

    def _by_key(self, status: Status, usage: Usage) -> None:
        """For whom the request ran: its task acts for the key (core/principal.py)."""
        key = principal.current().name
        self.key_requests.labels(key, principal.surface(), status).inc()
        self.key_tokens.labels(key, "prompt").inc(usage.prompt_tokens)
        self.key_tokens.labels(key, "completion").inc(usage.completion_tokens)
        self.key_tokens.labels(key, "cached").inc(usage.cached_tokens)

    # ---- HTTP (api/metrics.py's middleware) -------------------------------------------

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def websocket_opened(self) -> None:
        self.websockets.inc()
        self.websockets_open.inc()

    def websocket_closed(self) -> None:
        self.websockets_open.dec()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (CONTENT_TYPE)."""
        return generate_latest(self.collectors)


class EngineCollector:
    """Gauges read from the model registry at each scrape, so they are never stale."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for status in self.models.status():
            name = status.name
            for state in MODEL_STATES:
                families["state"].add_metric([name, state], 1.0 if status.state == state else 0.0)
            stats = status.stats or {}
            for key, value in stats.items():
                if key in families:  # a backend reports the numbers it has
                    families[key].add_metric([name], float(value))
            cells = stats.get("kv_cells")
            if cells and "kv_used" in stats:
                families["kv_ratio"].add_metric([name], stats["kv_used"] / cells)
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        """Keyed by the Backend.stats() name each one shows, and two of their own."""

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ("model",)) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        return {
            "state": gauge(
                "hearth_model_state",
                "1 for the state each model is in (unloaded, loading, loaded, failed).",
                ("model", "state"),
            ),
            "running": gauge("hearth_requests_running", "Sequences (choices) decoding now."),
            "waiting": gauge("hearth_requests_waiting", "Sequences (choices) waiting for a slot."),
            "slots": gauge("hearth_slots", "Sequences the model decodes together (--parallel)."),
            "kv_cells": gauge("hearth_kv_cache_cells", "KV-cache size in tokens (--ctx-size)."),
            "kv_used": gauge(
                "hearth_kv_cache_cells_used",
                "KV-cache tokens in use, by running requests and by prefixes kept for reuse.",
            ),
            "kv_ratio": gauge(
                "hearth_kv_cache_usage_ratio", "KV-cache tokens in use over its size (0 to 1)."
            ),
            "host_cached": gauge(
                "hearth_host_cache_sequences",
                "Idle conversations whose KV waits in host memory (--cache-ram).",
            ),
            "host_cache_bytes": gauge(
                "hearth_host_cache_bytes", "Host memory held by those conversations' KV."
            ),
        }


class PoolCollector:
    """The engines of each upstream pool (engine/upstream): up or down, requests in
    flight, requests sent and failed, read from the registry at each scrape."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        up, in_flight, sent, errors = families = self._families()
        for status in self.models.status():
            for m in status.members:
                labels = [status.name, m.url]
                up.add_metric(labels, 1.0 if m.state == "up" else 0.0)
                in_flight.add_metric(labels, float(m.in_flight))
                sent.add_metric(labels, float(m.requests))
                errors.add_metric(labels, float(m.errors))
        yield from families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, Metric, Metric]:
        labels = ["model", "member"]
        return (
            GaugeMetricFamily(
                "hearth_upstream_member_up",
                "1 while a pool member passes its health checks, 0 while it is out.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "hearth_upstream_member_in_flight",
                "Requests a pool member is answering now.",
                labels=labels,
            ),
            CounterMetricFamily(
                "hearth_upstream_member_requests",
                "Requests sent to a pool member (retries on another member count there).",
                labels=labels,
            ),
            CounterMetricFamily(
                "hearth_upstream_member_errors",
                "Requests and health checks a pool member failed.",
                labels=labels,
            ),
        )
