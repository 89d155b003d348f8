"""Reading a Prometheus exposition in tests, with prometheus_client's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse(text: str) -> Samples:
    """Every sample, keyed by name and labels (the text must parse)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with exactly these labels; None when there is none."""
    return samples.get((name, frozenset(labels.items())))


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample rose between two scrapes (absent counts as 0)."""
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def scrape(url: str) -> Samples:
    """GET /metrics of a live server, as Prometheus does: no key."""
    reply = httpx.get(f"{url}/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == CONTENT_TYPE
    return parse(reply.text)
