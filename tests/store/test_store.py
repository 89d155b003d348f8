"""The store against SQLite and a real PostgreSQL: migrations, repositories, pages, and
concurrent writers that must not lose rows."""

from __future__ import annotations

import asyncio

import pytest
from alembic.script import ScriptDirectory

from hearth.core.errors import NotFound
from hearth.core.ids import new_id, unix_now
from hearth.store import Store
from hearth.store.migrate import alembic_config, current
from hearth.store.models import Response
from hearth.store.pages import PageQuery


def _message(text: str) -> dict[str, object]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    }


async def test_migrations_are_applied_once(store: Store) -> None:
    # One head (get_current_head raises on several): every migration chains on the last.
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None and await current(store.db.engine) == head
    await store.upgrade()  # a second run is a no-op
    assert await current(store.db.engine) == head


async def test_conversation_lifecycle(store: Store) -> None:
    conv = await store.conversations.create({"title": "first"}, [_message("hi")])
    got = await store.conversations.get(conv.id)
    assert got is not None and got.meta == {"title": "first"}
    updated = await store.conversations.set_metadata(conv.id, {"title": "renamed"})
    assert updated is not None and updated.meta == {"title": "renamed"}
    assert (await store.conversations.get(conv.id)).meta == {"title": "renamed"}  # type: ignore[union-attr]
    items = await store.conversations.all_items(conv.id)
    assert [i["content"][0]["text"] for i in items] == ["hi"]
    item_id = items[0]["id"]
    assert (await store.conversations.get_item(conv.id, item_id)) is not None
    assert await store.conversations.delete_item(conv.id, item_id)
    assert not await store.conversations.delete_item(conv.id, item_id)
    assert await store.conversations.delete(conv.id)
    assert await store.conversations.get(conv.id) is None
    assert not await store.conversations.delete(conv.id)
    assert await store.conversations.add_items(conv.id, [_message("late")]) is None


async def test_pages_follow_the_cursor_both_ways(store: Store) -> None:
    conv = await store.conversations.create()
    texts = [f"m{i}" for i in range(7)]
    await store.conversations.add_items(conv.id, [_message(t) for t in texts])
    seen: list[str] = []
    after = None
    while True:
        query = PageQuery(limit=3, order="asc", after=after)
        page = await store.conversations.items(conv.id, query)
        seen += [row.data["content"][0]["text"] for row in page.data]
        if not page.has_more:
            break
        after = page.data[-1].id
    assert seen == texts
    desc = await store.conversations.items(conv.id, PageQuery(limit=2, order="desc"))
    assert [r.data["content"][0]["text"] for r in desc.data] == ["m6", "m5"] and desc.has_more
    listed = desc.as_list(lambda row: row.data)
    assert listed["object"] == "list" and listed["first_id"] == desc.data[0].id
    with pytest.raises(NotFound) as err:
        await store.conversations.items(conv.id, PageQuery(after="msg_unknown"))
    assert err.value.param == "after"


async def test_concurrent_appends_to_one_conversation_lose_nothing(store: Store) -> None:
    conv = await store.conversations.create()
    batches = [[_message(f"w{i}-a"), _message(f"w{i}-b")] for i in range(20)]
    results = await asyncio.gather(
        *(store.conversations.add_items(conv.id, batch) for batch in batches)
    )
    assert all(r is not None for r in results)
    items = await store.conversations.all_items(conv.id)
    texts = [i["content"][0]["text"] for i in items]
    assert sorted(texts) == sorted(t for i in range(20) for t in (f"w{i}-a", f"w{i}-b"))
    # Each writer's two items stay together and in order: appends never interleave.
    for i in range(20):
        assert texts.index(f"w{i}-b") == texts.index(f"w{i}-a") + 1


def _response(status: str = "in_progress") -> Response:
    return Response(
        id=new_id("resp_"), created_at=unix_now(), status=status, model="m", background=True,
        message_id=new_id("msg_"), meta={}, request={"instructions": None}, output=[],
    )  # fmt: skip


async def test_response_rows_deltas_and_ending(store: Store) -> None:
    row = _response()
    await store.responses.create(row, [_message("q1"), _message("q2")])
    assert await store.responses.add_deltas(row.id, ["Hel", "lo"])
    assert await store.responses.add_deltas(row.id, [" world", {"call_id": "c", "args": "{}"}])
    assert await store.responses.deltas(row.id) == [
        "Hel", "lo", " world", {"call_id": "c", "args": "{}"},
    ]  # fmt: skip
    page = await store.responses.input_items(row.id, PageQuery(order="asc"))
    assert [r.data["content"][0]["text"] for r in page.data] == ["q1", "q2"]
    assert await store.responses.update_active(row.id, status="cancelled")
    # Once ended, a late writer (the generation finishing) cannot undo it.
    assert not await store.responses.update_active(row.id, status="completed")
    assert not await store.responses.add_deltas(row.id, ["late"])
    assert (await store.responses.get(row.id)).status == "cancelled"  # type: ignore[union-attr]
    assert await store.responses.delete(row.id)
    assert await store.responses.get(row.id) is None
    assert await store.responses.deltas(row.id) == []


async def test_orphaned_responses_are_failed_and_heartbeats_renewed(store: Store) -> None:
    dead, alive, queued, done, jobless = (
        _response(),
        _response(),
        _response("queued"),
        _response("completed"),
        _response(),
    )
    dead.owner, alive.owner, queued.owner, done.owner = "gone", "here", "gone", "gone"
    jobless.owner = "here"  # its job died without saving its end: no heartbeat for it
    for row in (dead, alive, queued, done, jobless):
        await store.responses.create(row, [])
    await store.responses.heartbeat("here", 1234.5, [alive.id])
    assert (await store.responses.get(alive.id)).heartbeat_at == 1234.5  # type: ignore[union-attr]
    assert (await store.responses.get(dead.id)).heartbeat_at is None  # type: ignore[union-attr]
    assert (await store.responses.get(jobless.id)).heartbeat_at is None  # type: ignore[union-attr]
    error = {"code": "server_error", "message": "x"}
    failed = await store.responses.fail_orphans(error, lambda owner, _at: owner == "gone")
    assert sorted(failed) == sorted([dead.id, queued.id])
    for row in (dead, queued):
        got = await store.responses.get(row.id)
        assert got is not None and got.status == "failed" and got.error == error
    assert (await store.responses.get(alive.id)).status == "in_progress"  # type: ignore[union-attr]
    assert (await store.responses.get(done.id)).status == "completed"  # type: ignore[union-attr]


async def test_concurrent_response_writes(store: Store) -> None:
    rows = [_response() for _ in range(10)]
    await asyncio.gather(*(store.responses.create(r, [_message("x")]) for r in rows))
    await asyncio.gather(
        *(store.responses.add_deltas(r.id, [str(i)]) for r in rows for i in range(5))
    )
    for r in rows:
        assert sorted(await store.responses.deltas(r.id)) == [str(i) for i in range(5)]
