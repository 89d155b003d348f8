"""Stored objects carry the key that made them, and each query answers for the current
key (store/tenants.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hearth.core import principal
from hearth.core.ids import new_id, unix_now
from hearth.core.principal import Principal
from hearth.store import Store
from hearth.store.models import Assistant, Thread
from hearth.store.pages import PageQuery

T = TypeVar("T")
ALICE = Principal(name="alice", key_id="key_alice")
BOB = Principal(name="bob", key_id="key_bob")
ADMIN = Principal(name="ops", key_id="key_ops", admin=True)


async def _as(key: Principal, work: Callable[[], Awaitable[T]]) -> T:
    async def run() -> T:
        principal.act_as(key)
        return await work()

    return await asyncio.create_task(run())  # its own context: the caller's stays OPEN


async def test_conversations_answer_for_the_current_key(store: Store) -> None:
    repo = store.conversations
    made = await _as(ALICE, lambda: repo.create({"k": "v"}))
    assert made.tenant == "key_alice"
    assert await _as(BOB, lambda: repo.get(made.id)) is None
    assert (await _as(BOB, lambda: repo.list(PageQuery()))).data == []
    assert await _as(BOB, lambda: repo.set_metadata(made.id, {"k": "bob"})) is None
    assert await _as(BOB, lambda: repo.add_items(made.id, [])) is None
    assert not await _as(BOB, lambda: repo.delete(made.id))
    mine = await _as(ALICE, lambda: repo.get(made.id))
    assert mine is not None and mine.meta == {"k": "v"}
    assert (await _as(ADMIN, lambda: repo.get(made.id))) is not None
    # Objects of an admin's static key (no key id) are the admins' alone.
    static = await repo.create({})
    assert static.tenant is None
    assert await _as(ALICE, lambda: repo.get(static.id)) is None
    assert [c.id for c in (await repo.list(PageQuery(order="asc"))).data] == [made.id, static.id]
    assert await _as(ALICE, lambda: repo.delete(made.id))


async def test_assistants_and_threads_answer_for_the_current_key(store: Store) -> None:
    now = unix_now()
    assistant = Assistant(id=new_id("asst_"), created_at=now, meta={}, data={"model": "m"})
    thread = Thread(id=new_id("thread_"), created_at=now, meta={}, data={})
    await _as(ALICE, lambda: store.assistants.add(assistant))
    await _as(ALICE, lambda: store.threads.create(thread, []))
    await _only_alice_reaches(store.assistants, assistant.id)
    await _only_alice_reaches(store.threads, thread.id)
    assert await _as(ALICE, lambda: store.threads.delete(thread.id))


async def _only_alice_reaches(rows: Any, row_id: str) -> None:
    assert await _as(BOB, lambda: rows.get(row_id)) is None
    assert (await _as(BOB, lambda: rows.page(PageQuery()))).data == []
    assert not await _as(BOB, lambda: rows.update(row_id, meta={"bob": "1"}))
    assert not await _as(BOB, lambda: rows.delete(row_id))
    assert await _as(ALICE, lambda: rows.get(row_id)) is not None
