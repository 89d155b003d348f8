"""Assistants runs on the job engine, with a scripted backend and SQLite: the fixes that
Responses had first hold for runs too. A run's ending that the store already has
otherwise (another server's sweep) is the one its stream ends with; a cancel never cuts
the save of an ending; a cancel that loses the race to the run's end is a 400."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hearth.core.errors import InvalidRequest
from hearth.engine.fake import FakeBackend
from hearth.services.assistants import AssistantsService, RunJob
from hearth.services.assistants import runs as runs_module
from hearth.services.assistants.params import AssistantParams, RunParams, ThreadParams
from hearth.store import Store
from tests.conftest import registry_of


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[AssistantsService]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'hearth.db'}")
    await store.upgrade()
    slow = FakeBackend("slow", "one two three four five six", token_delay=0.05)
    # No flush while it runs: the run learns of the store's changes only at its end.
    service = AssistantsService(store, registry_of(slow), flush_interval=1000.0)
    yield service
    await service.close()
    await store.close()


async def _run(service: AssistantsService) -> RunJob:
    assistant = await service.create_assistant(AssistantParams(model="slow"))
    hi = ThreadParams.model_validate({"messages": [{"role": "user", "content": "hi"}]})
    thread = await service.create_thread(hi)
    return await service.runs.create(thread["id"], RunParams(assistant_id=assistant["id"]))


async def _names(job: RunJob, seen: list[str]) -> None:
    async for name, _ in job.subscribe():
        seen.append(name)


async def _until(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_run_failed_by_a_sweep_meanwhile_ends_its_stream_failed(
    service: AssistantsService,
) -> None:
    job = await _run(service)
    seen: list[str] = []
    follower = asyncio.create_task(_names(job, seen))
    await _until(lambda: "thread.message.delta" in seen)
    # Another server's sweep judged this one dead (say, its heartbeat was late).
    swept = await service.store.threads.fail_orphans(lambda o, h: True, runs_module._fail_orphan)
    assert swept == [job.run.id]
    await asyncio.wait_for(follower, 5)
    assert seen[-1] == "thread.run.failed"
    stored = await service.runs.get(job.run.thread_id, job.run.id)
    assert stored["status"] == "failed" and stored["last_error"]["code"] == "server_error"


async def test_a_cancel_while_the_run_saves_its_end_lets_the_save_finish(
    service: AssistantsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = service.store.threads.runs
    update, gate = runs.update, asyncio.Event()

    async def slow_ending(run_id: str, only_if: Any = None, **values: Any) -> bool:
        if values.get("status") == "completed":
            await gate.wait()
        return await update(run_id, only_if, **values)

    monkeypatch.setattr(runs, "update", slow_ending)
    job = await _run(service)
    seen: list[str] = []
    follower = asyncio.create_task(_names(job, seen))
    await _until(lambda: job.run.status == "completed")  # decided, and being saved
    cancel = asyncio.create_task(service.runs.cancel(job.run.thread_id, job.run.id))
    await asyncio.sleep(0.05)
    gate.set()
    with pytest.raises(InvalidRequest, match="Cannot cancel run with status 'completed'"):
        await asyncio.wait_for(cancel, 5)
    await asyncio.wait_for(follower, 5)
    assert seen[-1] == "thread.run.completed"
    stored = await service.runs.get(job.run.thread_id, job.run.id)
    assert stored["status"] == "completed"


async def test_a_cancel_that_loses_the_race_to_the_run_s_end_is_a_400(
    service: AssistantsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await _run(service)
    await asyncio.wait_for(job.done.wait(), 5)
    runs = service.store.threads.runs
    get, stale = runs.get, await runs.get(job.run.id)
    assert stale is not None and stale.status == "completed"
    stale.status = "in_progress"  # as the cancel read it, just before the run ended
    reads = [stale]

    async def read(run_id: str, **owner: Any) -> Any:
        return reads.pop() if reads else await get(run_id, **owner)

    monkeypatch.setattr(runs, "get", read)
    with pytest.raises(InvalidRequest, match="Cannot cancel run with status 'completed'"):
        await service.runs.cancel(job.run.thread_id, job.run.id)
    assert (await get(job.run.id)).status == "completed"  # type: ignore[union-attr]
