"""The batch job and service over a real store with a scripted request path: a batch
runs at most `concurrency` requests at once and ends; cancel, expiry, a revoked key, a
rate limit waited out, a shutdown and the next server taking over."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hearth.core import principal
from hearth.core.errors import HearthError, ModelNotFound, RateLimited
from hearth.services.batches import BatchesService
from hearth.services.batches.job import BatchJob
from hearth.services.jobs.owners import orphan_judge
from hearth.store import Store
from hearth.store.pages import PageQuery


class Path:
    """The request path: each request waits for `gate`, then answers with its text."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.running = 0
        self.most = 0
        self.limited_once: set[str] = set()
        self.moved = asyncio.Event()  # set whenever a request starts

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params["messages"][0]["content"]
        if params["model"] == "missing":
            raise ModelNotFound("The model 'missing' does not exist.")
        if text == "limited" and text not in self.limited_once:
            self.limited_once.add(text)
            raise RateLimited("over the limit", retry_after=0.01)
        self.running += 1
        self.most = max(self.most, self.running)
        self.moved.set()
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return {"id": "msg_x", "content": [{"type": "text", "text": text}]}


def body(err: HearthError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type(err).__name__, "message": err.message}}


def params(text: str, model: str = "m") -> dict[str, Any]:
    return {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": text}]}


_MADE: list[BatchesService] = []


def service(store: Store, path: Path, concurrency: int = 2) -> BatchesService:
    svc = BatchesService(store, path, body, concurrency=concurrency)
    _MADE.append(svc)
    return svc


@pytest.fixture(autouse=True)
async def _services_closed(store: Store) -> AsyncIterator[None]:
    """Each test's services closed before its store: a job left running past the test's
    event loop would leave its database connection to be collected in a later test."""
    yield
    while _MADE:
        await _MADE.pop().close()


async def results(svc: BatchesService, batch_id: str) -> dict[str, dict[str, Any]]:
    lines = b"".join([chunk async for chunk in await svc.results(batch_id)])
    return {
        line["custom_id"]: line["result"] for line in map(json.loads, lines.decode().splitlines())
    }


async def started(path: Path, n: int) -> None:
    """Until `n` requests are running."""
    async with asyncio.timeout(5):
        while path.running != n:
            path.moved.clear()
            await path.moved.wait()


async def two_of_four_running(store: Store) -> tuple[Path, BatchesService, Any, BatchJob]:
    """A batch of four requests, two of them running (held at the path's gate)."""
    path = Path()
    svc = service(store, path)
    row = await svc.create([(f"r{i}", params(f"t{i}")) for i in range(4)])
    job = svc.jobs.get(row.id)
    assert job is not None
    await started(path, 2)
    return path, svc, row, job


async def test_a_batch_runs_a_few_at_a_time_and_ends(store: Store) -> None:
    path = Path()
    svc = service(store, path)
    requests = [(f"r{i}", params(f"t{i}")) for i in range(5)]
    requests += [("gone", params("x", model="missing")), ("limited", params("limited"))]
    row = await svc.create(requests)
    await started(path, 2)
    path.gate.set()
    job = svc.jobs.get(row.id)
    assert job is not None
    await job.done.wait()
    batch = await svc.retrieve(row.id, "http://x/results")
    assert batch["processing_status"] == "ended" and batch["results_url"] == "http://x/results"
    assert batch["request_counts"]["succeeded"] == 6 and batch["request_counts"]["errored"] == 1
    assert path.most == 2
    got = await results(svc, row.id)
    assert got["r3"]["message"]["content"][0]["text"] == "t3"
    assert got["gone"]["error"]["error"]["type"] == "ModelNotFound"
    assert got["limited"]["type"] == "succeeded"  # the rate limit was waited out


async def test_cancel_stops_the_running_and_cancels_the_rest(store: Store) -> None:
    path = Path()
    svc = service(store, path)
    row = await svc.create([(f"r{i}", params(f"t{i}")) for i in range(5)])
    await started(path, 2)
    batch = await svc.cancel(row.id, "u")
    assert batch["processing_status"] == "ended" and batch["cancel_initiated_at"]
    assert batch["request_counts"]["canceled"] == 5
    assert {r["type"] for r in (await results(svc, row.id)).values()} == {"canceled"}
    assert path.running == 0


async def test_requests_not_run_by_the_expiry_expire(store: Store) -> None:
    path, svc, row, job = await two_of_four_running(store)
    job.expires_at = time.time()  # as if 24 hours had passed as the running ones end
    path.gate.set()
    await job.done.wait()
    counts = (await svc.retrieve(row.id, "u"))["request_counts"]
    assert counts["expired"] == 2 and counts["succeeded"] == 2


async def test_a_revoked_keys_batch_ends_with_the_reason(store: Store) -> None:
    _, svc, row, job = await two_of_four_running(store)
    await svc.jobs.stop(job, "revoked")
    batch = await svc.retrieve(row.id, "u")
    assert batch["processing_status"] == "ended" and batch["request_counts"]["errored"] == 4
    assert all(
        "revoked" in r["error"]["error"]["message"] for r in (await results(svc, row.id)).values()
    )


async def test_a_shutdown_cuts_off_the_running_and_the_next_server_runs_the_rest(
    store: Store,
) -> None:
    path = Path()
    first = service(store, path)
    row = await first.create([(f"r{i}", params(f"t{i}")) for i in range(5)])
    await started(path, 2)
    await first.close()  # a shutdown
    batch = await first.retrieve(row.id, "u")
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"]["errored"] == 2 and batch["request_counts"]["processing"] == 3
    path.gate.set()
    second = service(store, path)
    # The first one's owner is this very process: judged by its heartbeat as another
    # host's would be, once stale.
    adopted = await second._adopt(orphan_judge(time.time() + 3600))
    assert adopted == [row.id]
    job = second.jobs.get(row.id)
    assert job is not None
    await job.done.wait()
    got = await results(second, row.id)
    assert [got[f"r{i}"]["type"] for i in range(5)].count("succeeded") == 3
    cut = [r for r in got.values() if r["type"] == "errored"]
    assert len(cut) == 2 and all("server stopped" in r["error"]["error"]["message"] for r in cut)


async def test_a_batch_is_hidden_from_other_keys(store: Store) -> None:
    path = Path()
    path.gate.set()
    svc = service(store, path)
    principal.act_as(principal.Principal(name="a", key_id="key_a"))
    row = await svc.create([("r", params("t"))])
    principal.act_as(principal.Principal(name="b", key_id="key_b"))
    with pytest.raises(HearthError) as caught:
        await svc.retrieve(row.id, "u")
    assert caught.value.status == 404
    assert (await svc.list(PageQuery(), lambda i: i))["data"] == []
    principal.act_as(principal.Principal(name="root", key_id="key_r", admin=True))
    assert (await svc.retrieve(row.id, "u"))["id"] == row.id
