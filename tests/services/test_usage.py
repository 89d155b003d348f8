"""services/usage.py: each request is one row for whom its task acts, written in the
background in batches (by time or by count, and on close); a database fault loses that
batch only, with a warning, and never reaches the request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from hearth.core import principal
from hearth.core.errors import Overloaded, StoreUnavailable
from hearth.core.principal import Principal
from hearth.engine.fake import FakeBackend
from hearth.engine.meter import EmbedReport, Meters, RunReport
from hearth.engine.types import GenerationRequest, Usage
from hearth.services.generation import start_reply
from hearth.services.usage import UsageRecorder
from hearth.store.usage import Use
from tests.conftest import registry_of

ALICE = Principal(name="alice", key_id="key_alice")


USAGE = Usage(10, 5, 2)


def report(*reasons: str, usage: Usage = USAGE) -> RunReport:
    return RunReport(len(reasons), usage, reasons, queue=0.0, ttft=0.1, e2e=0.2)  # type: ignore[arg-type]


class FakeLog:
    """The store's usage log: keeps each batch; `fail` names batches (0-based) to refuse."""

    def __init__(self, fail: Sequence[int] = ()) -> None:
        self.batches: list[list[Use]] = []
        self.attempts = 0
        self.fail = set(fail)
        self.written = asyncio.Event()
        self.attempted = asyncio.Event()

    async def add(self, uses: Sequence[Use]) -> None:
        attempt = self.attempts
        self.attempts += 1
        self.attempted.set()
        await asyncio.sleep(0)  # a real write yields to the loop
        if attempt in self.fail:
            raise StoreUnavailable("The database is unavailable at the moment; retry shortly.")
        self.batches.append(list(uses))
        self.written.set()

    @property
    def rows(self) -> list[Use]:
        return [u for batch in self.batches for u in batch]


async def as_(who: Principal, via: principal.Surface, record: object) -> None:
    """Run a recording in a task acting for `who`, as a request's task does."""

    async def task() -> None:
        principal.act_as(who, via)
        record()  # type: ignore[operator]

    await asyncio.create_task(task())


async def test_a_row_names_the_key_surface_model_tokens_and_status() -> None:
    sink = FakeLog()
    usage = UsageRecorder(sink, clock=lambda: 1_800_000_000.7)
    await as_(ALICE, "ollama", lambda: usage.finished("m", report("stop", "length")))
    await as_(ALICE, "openai", lambda: usage.finished("m", report("stop", "cancelled")))
    await as_(ALICE, "responses", lambda: usage.finished("m", report("error", "cancelled")))
    await as_(ALICE, "openai", lambda: usage.refused("m", Overloaded("the queue is full")))
    usage.embedded("e", EmbedReport(tokens=7, outcome="done", seconds=0.1))  # outside: OPEN
    usage.embedded("e", EmbedReport(tokens=0, outcome="cancelled", seconds=0.1))
    assert sink.batches == []  # recording never writes
    await usage.flush()
    assert sink.rows == [
        Use(1_800_000_000, "key_alice", "alice", "m", "ollama", "ok", 10, 5, 2),
        Use(1_800_000_000, "key_alice", "alice", "m", "openai", "cancelled", 10, 5, 2),
        Use(1_800_000_000, "key_alice", "alice", "m", "responses", "error", 10, 5, 2),
        Use(1_800_000_000, "key_alice", "alice", "m", "openai", "refused", 0, 0, 0),
        Use(1_800_000_000, None, "open", "e", "other", "ok", 7, 0, 0),
        Use(1_800_000_000, None, "open", "e", "other", "cancelled", 0, 0, 0),
    ]


async def test_rows_are_written_in_the_background_every_interval() -> None:
    sink = FakeLog()
    usage = UsageRecorder(sink, interval=0.05)
    usage.start()
    for _ in range(3):
        usage.finished("m", report("stop"))
    await asyncio.wait_for(sink.written.wait(), 2)
    assert [len(b) for b in sink.batches] == [3]  # one batch, one transaction
    await usage.close()
    assert len(sink.batches) == 1  # nothing left over


async def test_a_full_batch_is_written_at_once_and_close_writes_the_rest() -> None:
    sink = FakeLog()
    usage = UsageRecorder(sink, interval=3600, batch=2)
    usage.start()
    usage.finished("m", report("stop"))
    await asyncio.sleep(0.05)
    assert sink.batches == []  # one row waits for the interval
    usage.finished("m", report("stop"))
    await asyncio.wait_for(sink.written.wait(), 2)  # long before the interval
    assert [len(b) for b in sink.batches] == [2]
    usage.finished("m", report("length"))
    await usage.close()
    assert [len(b) for b in sink.batches] == [2, 1]
    assert usage.pending == 0


async def test_a_fault_loses_that_batch_only_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    sink = FakeLog(fail=[1])  # the second batch of this flush
    usage = UsageRecorder(sink, batch=2)
    for tokens in range(5):
        usage.finished("m", report("stop", usage=Usage(tokens, 1)))
    with caplog.at_level(logging.WARNING, logger="hearth.services.usage"):
        await usage.flush()  # raises nothing
    assert [u.prompt_tokens for u in sink.rows] == [0, 1, 4]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "usage of 2 requests" in warning.getMessage()
    usage.finished("m", report("stop"))  # and it goes on
    await usage.flush()
    assert len(sink.rows) == 4


async def test_a_fault_in_the_writer_task_does_not_stop_it() -> None:
    sink = FakeLog(fail=[0])
    usage = UsageRecorder(sink, interval=0.02)
    usage.start()
    usage.finished("m", report("stop"))
    await asyncio.wait_for(sink.attempted.wait(), 2)  # and refused
    usage.finished("m", report("length"))
    await asyncio.wait_for(sink.written.wait(), 2)
    await usage.close()
    assert [u.status for u in sink.rows] == ["ok"]
    assert sink.attempts == 2


async def test_rows_past_the_bound_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FakeLog()
    usage = UsageRecorder(sink, max_pending=3)  # never started: nothing writes
    with caplog.at_level(logging.WARNING, logger="hearth.services.usage"):
        for _ in range(5):
            usage.finished("m", report("stop"))
        assert usage.pending == 3
        await usage.flush()
    assert len(sink.rows) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "usage is not being written fast enough; dropping records",
        "2 usage records were dropped",
    ]


async def test_a_generation_is_recorded_once_through_the_registrys_meters() -> None:
    """With Prometheus off as well as on: the meter the app sets is `Meters`."""
    registry = registry_of(FakeBackend("fake", "one two three"))
    sink = FakeLog()
    usage = UsageRecorder(sink)
    registry.meter = Meters(usage)

    async def request() -> Usage:
        principal.act_as(ALICE, "openai")
        run = await start_reply(registry, [GenerationRequest(model="fake", prompt="hi")])
        await run.collect()
        return run.usage

    got = await asyncio.create_task(request())
    await usage.flush()
    [row] = sink.rows
    assert (row.key_name, row.surface, row.model, row.status) == ("alice", "openai", "fake", "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (got.prompt_tokens, got.completion_tokens)
    assert got.completion_tokens > 0
    await registry.close()
