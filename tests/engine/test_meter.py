"""engine/meter.py: a request's status from its report, and `Meters`, which tells every
meter each fact even when one of them fails."""

from __future__ import annotations

import logging

import pytest

from hearth.core.errors import Overloaded
from hearth.engine.meter import EmbedReport, Meters, RunReport
from hearth.engine.types import Usage


def report(*reasons: str) -> RunReport:
    return RunReport(len(reasons), Usage(1, 1), reasons, queue=0.0, ttft=None, e2e=0.0)  # type: ignore[arg-type]


def test_the_status_of_a_run_and_of_an_embedding() -> None:
    assert report("stop", "length", "tool_calls").status == "ok"
    assert report("stop", "cancelled").status == "cancelled"
    assert report("cancelled", "error").status == "error"  # a failure outranks a leaver
    assert EmbedReport(3, "done", 0.1).status == "ok"
    assert EmbedReport(0, "cancelled", 0.1).status == "cancelled"
    assert EmbedReport(0, "error", 0.1).status == "error"


class Recording:
    def __init__(self) -> None:
        self.facts: list[tuple[str, str, object]] = []

    def refused(self, model: str, error: Overloaded) -> None:
        self.facts.append(("refused", model, error))

    def finished(self, model: str, report: RunReport) -> None:
        self.facts.append(("finished", model, report))

    def embedded(self, model: str, report: EmbedReport) -> None:
        self.facts.append(("embedded", model, report))


class Broken(Recording):
    def finished(self, model: str, report: RunReport) -> None:
        raise RuntimeError("a bug in this meter")


def test_every_meter_is_told_and_a_failing_one_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    broken, first, second = Broken(), Recording(), Recording()
    meters = Meters(first, broken, second)
    run, vectors, full = report("stop"), EmbedReport(3, "done", 0.1), Overloaded("full")
    with caplog.at_level(logging.ERROR, logger="hearth.engine.meter"):
        meters.finished("m", run)
        meters.embedded("e", vectors)
        meters.refused("m", full)
    expected = [("finished", "m", run), ("embedded", "e", vectors), ("refused", "m", full)]
    assert first.facts == expected and second.facts == expected
    assert broken.facts == expected[1:]
    [logged] = caplog.records
    assert logged.getMessage() == "Broken failed to record a request" and logged.exc_info
