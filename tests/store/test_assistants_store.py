"""The Assistants API's tables on SQLite and PostgreSQL: a thread's delete takes its
messages, runs and steps with it; one open run per thread; pages in both directions."""

from __future__ import annotations

from hearth.core.ids import new_id, unix_now
from hearth.store import Store
from hearth.store.models import Run, RunStep, Thread, ThreadMessage
from hearth.store.pages import PageQuery


def _thread() -> Thread:
    return Thread(id=new_id("thread_"), created_at=unix_now(), meta={}, data={})


def _message(thread_id: str) -> ThreadMessage:
    return ThreadMessage(
        id=new_id("msg_"), created_at=unix_now(), thread_id=thread_id, meta={}, data={}
    )


def _run(thread_id: str, status: str = "queued") -> Run:
    return Run(
        id=new_id("run_"),
        created_at=unix_now(),
        thread_id=thread_id,
        status=status,
        meta={},
        data={},
    )


async def test_thread_delete_takes_everything_under_it(store: Store) -> None:
    kept, gone = _thread(), _thread()
    await store.threads.create(kept, [_message(kept.id)])
    await store.threads.create(gone, [_message(gone.id), _message(gone.id)])
    run = _run(gone.id, "completed")
    assert await store.threads.add_unless_open_run(gone.id, [run]) is None
    step = RunStep(id=new_id("step_"), created_at=0, thread_id=gone.id, run_id=run.id, data={})
    await store.threads.steps.add(step)
    assert await store.threads.delete(gone.id)
    assert await store.threads.get(gone.id) is None
    assert await store.threads.messages.all(thread_id=gone.id) == []
    assert await store.threads.runs.get(run.id) is None
    assert await store.threads.steps.get(step.id) is None
    assert len(await store.threads.messages.all(thread_id=kept.id)) == 1
    assert not await store.threads.delete(gone.id)


async def test_one_open_run_per_thread(store: Store) -> None:
    thread = _thread()
    await store.threads.create(thread, [])
    first = _run(thread.id)
    assert await store.threads.add_unless_open_run(thread.id, [first]) is None
    late = _message(thread.id)
    assert await store.threads.add_unless_open_run(thread.id, [late, _run(thread.id)]) == first.id
    assert await store.threads.messages.get(late.id) is None  # nothing of it was added
    assert not await store.threads.runs.update(first.id, only_if=("requires_action",), status="x")
    assert await store.threads.runs.update(first.id, only_if=("queued",), status="completed")
    assert await store.threads.add_unless_open_run(thread.id, [late]) is None


async def test_pages_after_and_before(store: Store) -> None:
    thread = _thread()
    messages = [_message(thread.id) for _ in range(9)]
    await store.threads.create(thread, messages)
    ids = [m.id for m in messages]

    async def page(**query: object) -> tuple[list[str], bool]:
        got = await store.threads.messages.page(PageQuery(**query), thread_id=thread.id)  # type: ignore[arg-type]
        return [m.id for m in got.data], got.has_more

    assert await page(limit=4, order="asc") == (ids[:4], True)
    assert await page(limit=4, order="asc", after=ids[3]) == (ids[4:8], True)
    assert await page(limit=4, order="asc", before=ids[6]) == (ids[2:6], True)
    assert await page(limit=4, order="asc", before=ids[2]) == (ids[:2], False)
    assert await page(limit=4, order="desc", before=ids[2]) == (ids[6:2:-1], True)
    assert await page(limit=4, order="desc", after=ids[2]) == (ids[1::-1], False)
    assert await page(order="asc", after=ids[1], before=ids[5]) == (ids[2:5], False)


async def test_runs_awaiting_tools_of_a_thread_or_all(store: Store) -> None:
    one, two = _thread(), _thread()
    for thread in (one, two):
        await store.threads.create(thread, [])
    waiting_one, waiting_two = _run(one.id, "requires_action"), _run(two.id, "requires_action")
    await store.threads.runs.add(waiting_one, _run(one.id, "completed"), waiting_two)
    assert [r.id for r in await store.threads.awaiting_tools(one.id)] == [waiting_one.id]
    everywhere = {r.id for r in await store.threads.awaiting_tools()}
    assert {waiting_one.id, waiting_two.id} <= everywhere
