"""Stored Message Batches on SQLite and PostgreSQL: requests taken in order, results
settled once, cancel, the end, adoption after a crash, pages per key, delete."""

from __future__ import annotations

import time

from hearth.core.ids import new_id, unix_now
from hearth.store import Store
from hearth.store.models import MessageBatch
from hearth.store.pages import PageQuery

SUCCEEDED = {"type": "succeeded", "message": {"id": "msg_1"}}
CUT = {"type": "errored", "error": {"type": "error", "error": {"type": "api_error"}}}


async def _batch(store: Store, n: int, key_id: str | None = "key_a", owner: str = "me") -> str:
    now = unix_now()
    row = MessageBatch(
        id=new_id("msgbatch_"),
        created_at=now,
        status="in_progress",
        key_id=key_id,
        key_name="a",
        expires_at=now + 86400,
        owner=owner,
        heartbeat_at=time.time(),
    )
    await store.batches.create(row, [(f"r{i}", {"model": "m", "i": i}) for i in range(n)])
    return row.id


async def test_requests_run_in_order_and_settle_once(store: Store) -> None:
    batch_id = await _batch(store, 5)
    counts = await store.batches.counts([batch_id])
    assert counts[batch_id] == {
        "processing": 5, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0
    }  # fmt: skip
    first = await store.batches.take(batch_id, 2)
    assert [r.custom_id for r in first] == ["r0", "r1"] and first[1].params["i"] == 1
    assert await store.batches.settle([first[0].seq], SUCCEEDED) == 1
    assert await store.batches.settle([first[0].seq], CUT) == 0  # settled already
    assert not await store.batches.end_if_done(batch_id, time.time())
    rest = await store.batches.take(batch_id, 10)
    assert [r.custom_id for r in rest] == ["r2", "r3", "r4"]
    assert await store.batches.take(batch_id, 10) == []
    await store.batches.settle([r.seq for r in [first[1], *rest]], SUCCEEDED)
    assert await store.batches.end_if_done(batch_id, 123.5)
    got = await store.batches.get(batch_id)
    assert got is not None and got.status == "ended" and got.ended_at == 123.5
    assert (await store.batches.counts([batch_id]))[batch_id]["succeeded"] == 5
    lines = await store.batches.results(batch_id, limit=3)
    assert [c for _, c, _ in lines] == ["r0", "r1", "r2"]
    more = await store.batches.results(batch_id, after_seq=lines[-1][0])
    assert [c for _, c, _ in more] == ["r3", "r4"] and more[0][2] == SUCCEEDED


async def test_cancel_cancels_what_has_not_started(store: Store) -> None:
    batch_id = await _batch(store, 4)
    running = await store.batches.take(batch_id, 1)
    assert await store.batches.cancel(batch_id, 50.0)
    assert not await store.batches.cancel(batch_id, 51.0)  # canceling already
    assert await store.batches.take(batch_id, 4) == []  # nothing new starts
    got = await store.batches.get(batch_id)
    assert got is not None and got.status == "canceling" and got.cancel_initiated_at == 50.0
    assert not await store.batches.end_if_done(batch_id, 60.0)  # one still runs
    await store.batches.settle([running[0].seq], {"type": "canceled"})
    assert await store.batches.end_if_done(batch_id, 60.0)
    counts = (await store.batches.counts([batch_id]))[batch_id]
    assert counts["canceled"] == 4 and counts["processing"] == 0


async def test_a_dead_servers_batch_is_adopted_and_its_running_requests_cut_off(
    store: Store,
) -> None:
    batch_id = await _batch(store, 3, owner="dead")
    live_id = await _batch(store, 1, owner="alive")
    await store.batches.take(batch_id, 1)
    adopted = await store.batches.adopt_orphans(lambda o, _: o == "dead", "new", 9.0, CUT)
    assert adopted == [batch_id]
    got = await store.batches.get(batch_id)
    assert got is not None and got.owner == "new" and got.heartbeat_at == 9.0
    counts = (await store.batches.counts([batch_id]))[batch_id]
    assert counts["errored"] == 1 and counts["processing"] == 2
    assert [r.custom_id for r in await store.batches.take(batch_id, 5)] == ["r1", "r2"]
    assert (await store.batches.get(live_id)).owner == "alive"  # type: ignore[union-attr]


async def test_pages_are_newest_first_and_per_key(store: Store) -> None:
    ids = [await _batch(store, 1, key_id="key_a" if i % 2 else "key_b") for i in range(5)]
    everyone = await store.batches.page(PageQuery(limit=3))
    assert [b.id for b in everyone.data] == ids[::-1][:3] and everyone.has_more
    after = await store.batches.page(PageQuery(limit=3, after=everyone.data[-1].id))
    assert [b.id for b in after.data] == ids[::-1][3:] and not after.has_more
    mine = await store.batches.page(PageQuery(limit=10), key_id="key_a")
    assert [b.id for b in mine.data] == [ids[3], ids[1]]


async def test_only_an_ended_batch_is_deleted(store: Store) -> None:
    batch_id = await _batch(store, 2)
    assert not await store.batches.delete(batch_id)
    await store.batches.take(batch_id, 1)
    assert await store.batches.close_open(batch_id, {"type": "expired"}) == 1
    assert not await store.batches.end_if_done(batch_id, 1.0)
    assert await store.batches.close_open(batch_id, CUT, running=True) == 1
    assert await store.batches.end_if_done(batch_id, 1.0)
    assert await store.batches.delete(batch_id)
    assert await store.batches.get(batch_id) is None
    assert await store.batches.results(batch_id) == []
    assert not await store.batches.delete(batch_id)
