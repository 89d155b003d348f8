"""The job engine with a scripted kind of job (no model, no database): how a job ends
when it is cancelled (also while saving its ending), stopped at shutdown, stopped
before its task began, ended elsewhere or broken; and the table's heartbeat and sweep."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hearth.core import principal
from hearth.core.errors import StoreUnavailable
from hearth.core.principal import Principal
from hearth.services.jobs import EndedElsewhere, Job, JobTable
from hearth.services.jobs import table as table_module
from hearth.services.jobs.owners import STALE_AFTER, Judge
from hearth.services.key_watch import KeyWatch

Script = Callable[["Toy"], Awaitable[None]]


STOPPED = {"code": "server_error", "message": "stopped"}
REVOKED = {"code": "server_error", "message": "revoked"}
INTERNAL = {"code": "server_error", "message": "internal"}


class Toy(Job[str]):
    """Its work is a script; its ending is saved to `saved` once `saving` lets it."""

    kind = "toy"
    STOPPED = STOPPED
    REVOKED = REVOKED
    INTERNAL = INTERNAL

    def __init__(self, key: str, script: Script) -> None:
        super().__init__(key, ["created"])
        self.script = script
        self.status = "in_progress"
        self.saved: list[tuple[str, Any]] = []  # what the "store" got
        self.saving = asyncio.Event()
        self.saving.set()
        self.released = False

    @property
    def decided(self) -> bool:
        return self.status != "in_progress"

    async def work(self) -> None:
        await self.script(self)

    async def end(self, status: str, error: dict[str, Any] | None = None) -> None:
        self.status = status
        await asyncio.wait_for(self.saving.wait(), 2)  # bounded: a broken test fails
        self.saved.append((status, error))
        self.log.emit(status)

    async def ended_elsewhere(self) -> None:
        self.log.emit("ended elsewhere")

    async def release(self) -> None:
        self.released = True


async def forever(job: Toy) -> None:
    await asyncio.Event().wait()


async def complete(job: Toy) -> None:
    job.log.emit("delta")
    await job.end("completed")


class Rows:
    """The store's side: heartbeats renewed, and rows as (owner, heartbeat_at)."""

    def __init__(self) -> None:
        self.renewed: list[tuple[str, list[str]]] = []
        self.rows: dict[str, tuple[str | None, float | None]] = {}
        self.swept: list[list[str]] = []
        self.outage = 0  # this many calls fail as if the database were away

    async def renew(self, owner: str, now: float, keys: list[str]) -> None:
        if self.outage:
            self.outage -= 1
            raise StoreUnavailable("the database is unavailable")
        self.renewed.append((owner, sorted(keys)))

    async def fail_orphans(self, judge: Judge) -> list[str]:
        failed = sorted(key for key, (owner, beat) in self.rows.items() if judge(owner, beat))
        self.swept.append(failed)
        return failed


def make_table(rows: Rows, chores: Callable[[], Awaitable[None]] | None = None) -> JobTable[Toy]:
    return JobTable("toy", rows.renew, rows.fail_orphans, chores=chores)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_cancel_stops_the_work_and_saves_cancelled() -> None:
    table = make_table(Rows())
    job = table.spawn(Toy("a", forever))
    await _settle()
    await asyncio.wait_for(table.stop(job), 1)
    assert job.saved == [("cancelled", None)] and job.released
    assert job.log.events == ["created", "cancelled"] and job.done.is_set()
    await _settle()
    assert table.get("a") is None


async def test_a_cancel_while_saving_the_ending_lets_the_save_finish() -> None:
    """A job whose ending is decided is not cut short: the store and the stream tell
    the same ending, and the stop returns once it is saved."""
    table = make_table(Rows())
    job = Toy("a", complete)
    job.saving.clear()
    table.spawn(job)
    await _settle()
    assert job.decided and not job.saved  # saving "completed" now
    stop = asyncio.create_task(table.stop(job))
    await _settle()
    assert not stop.done()
    job.saving.set()
    await asyncio.wait_for(stop, 1)
    assert job.saved == [("completed", None)]
    assert job.log.events == ["created", "delta", "completed"]


async def test_shutdown_mid_job_saves_each_job_failed_and_ends_its_followers() -> None:
    rows = Rows()
    table = make_table(rows)
    await table.start()
    saving = Toy("saving", complete)
    saving.saving.clear()
    table.spawn(saving)
    running = [table.spawn(Toy(key, forever)) for key in ("a", "b")]
    await _settle()
    followers = [asyncio.create_task(_events(job)) for job in running]
    closing = asyncio.create_task(table.close())
    await _settle()
    # The jobs stop together: the running ones are saved while one still saves.
    assert [job.saved for job in running] == [[("failed", Toy.STOPPED)]] * 2
    assert not closing.done()
    saving.saving.set()
    await asyncio.wait_for(closing, 1)
    assert saving.saved == [("completed", None)]  # its own ending, not cut short
    assert await asyncio.wait_for(asyncio.gather(*followers), 1) == [["created", "failed"]] * 2
    assert table._heartbeat is not None and table._heartbeat.cancelled()


async def _events(job: Toy) -> list[str]:
    return [event async for event in job.subscribe()]


async def test_a_job_stopped_before_its_task_began_still_ends() -> None:
    table = make_table(Rows())
    job = table.spawn(Toy("a", complete))
    async with asyncio.timeout(1):
        await table.stop(job)  # before the loop ran the task once
    assert job.saved == [("cancelled", None)] and job.released
    assert job.log.events == ["created", "cancelled"]


async def test_the_first_reason_to_stop_holds() -> None:
    """A client's cancel, then a shutdown before the job has seen it: it was cancelled."""
    table = make_table(Rows())
    job = table.spawn(Toy("a", forever))
    await _settle()
    stops = asyncio.gather(table.stop(job), table.stop(job, "shutdown"))
    await asyncio.wait_for(stops, 1)
    assert job.saved == [("cancelled", None)]


async def test_a_job_ended_elsewhere_writes_nothing_more() -> None:
    async def noticed(job: Toy) -> None:
        job.log.emit("delta")
        raise EndedElsewhere()

    table = make_table(Rows())
    job = table.spawn(Toy("a", noticed))
    await asyncio.wait_for(job.done.wait(), 1)
    assert job.saved == [] and job.released
    assert job.log.events == ["created", "delta", "ended elsewhere"]


async def test_a_bug_fails_the_job_without_details_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(job: Toy) -> None:
        raise RuntimeError("secret detail")

    table = make_table(Rows())
    with caplog.at_level(logging.ERROR):
        job = table.spawn(Toy("a", broken))
        await asyncio.wait_for(job.done.wait(), 1)
    assert job.saved == [("failed", Toy.INTERNAL)] and job.released
    assert "toy a failed" in caplog.text and "secret detail" in caplog.text


async def test_a_finished_job_does_not_forget_its_keys_next_job() -> None:
    gate = asyncio.Event()

    async def paused(job: Toy) -> None:
        await gate.wait()
        await job.end("requires_action")

    table = make_table(Rows())
    first = table.spawn(Toy("run", paused))
    second = table.spawn(Toy("run", forever))  # the same key's next stretch of work
    gate.set()
    await asyncio.wait_for(first.done.wait(), 1)
    await _settle()
    assert table.get("run") is second
    await table.close()


async def test_the_heartbeat_renews_only_live_jobs_then_sweeps_and_does_chores() -> None:
    rows = Rows()
    chores: list[str] = []

    async def chore() -> None:
        chores.append("expired the overdue")

    table = make_table(rows, chore)
    live = table.spawn(Toy("live", forever))
    ended = table.spawn(Toy("ended", complete))
    await asyncio.wait_for(ended.done.wait(), 1)
    await _settle()
    rows.rows = {"dead": ("another-host:1:x:y", 0.0)}
    await table.beat()
    assert rows.renewed == [(table.owner, ["live"])]
    assert chores == ["expired the overdue"]
    await table.stop(live)
    await _settle()
    await table.beat()  # nothing left to renew
    assert rows.renewed == [(table.owner, ["live"])]


async def test_the_sweep_fails_dead_owners_rows_never_a_live_ones() -> None:
    rows = Rows()
    table = make_table(rows)
    fresh = time.time()
    rows.rows = {
        "mine": (table.owner, fresh),
        "replica": ("another-host:1:x:y", fresh),
        "stale": ("another-host:1:x:y", fresh - STALE_AFTER - 5),
        "earlier-incarnation": (f"{socket.gethostname()}:{os.getpid()}:0ther:y", fresh),
        "never-beat": (None, None),
    }
    await table.start()  # a server starting fails what dead ones left
    try:
        assert rows.swept == [["earlier-incarnation", "never-beat", "stale"]]
    finally:
        await table.close()


async def test_the_heartbeat_goes_on_through_a_store_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(table_module, "HEARTBEAT_EVERY", 0.01)
    rows = Rows()
    rows.outage = 2
    table = make_table(rows)
    table.spawn(Toy("a", forever))
    await table.start()
    try:
        for _ in range(200):
            if rows.renewed:
                break
            await asyncio.sleep(0.01)
        assert rows.renewed and rows.outage == 0
    finally:
        await table.close()


async def test_a_revoke_stops_the_jobs_its_key_started_and_no_others() -> None:
    watch = KeyWatch(None)
    table = make_table(Rows())
    table.watch = watch

    async def spawn_for(key: Principal) -> Toy:
        principal.act_as(key)  # as the request that spawns it
        return table.spawn(Toy(f"job-{key.name}", forever))

    mine = await asyncio.create_task(spawn_for(Principal(name="a", key_id="key_a")))
    other = await asyncio.create_task(spawn_for(Principal(name="b", key_id="key_b")))
    static = await asyncio.create_task(spawn_for(Principal(name="static")))  # no row to watch
    await _settle()
    assert watch.watching == 2
    assert watch.end_key("key_a") == 1
    await asyncio.wait_for(mine.done.wait(), 2)
    assert mine.saved == [("failed", REVOKED)]
    assert not other.done.is_set() and not static.done.is_set()
    await table.close()
    assert other.saved == [("failed", STOPPED)] and watch.watching == 0
