"""A job's event log: followers that join at any point get every event after theirs,
in order, live, and all end when the log closes."""

from __future__ import annotations

import asyncio

from hearth.services.jobs.events import EventLog


async def _collect(log: EventLog[str], after: int = -1) -> list[str]:
    return [event async for event in log.follow(after)]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_follower_gets_the_opening_then_each_event_live_until_close() -> None:
    log = EventLog(["created"])
    follower = asyncio.create_task(_collect(log))
    await _settle()
    log.emit("delta 1", "delta 2")
    await _settle()
    log.emit("completed")
    await _settle()
    assert not follower.done()  # nothing says it ended yet
    log.close()
    assert await asyncio.wait_for(follower, 1) == ["created", "delta 1", "delta 2", "completed"]


async def test_a_resumed_follower_starts_after_the_event_it_names() -> None:
    log = EventLog(["e0", "e1", "e2"])
    log.close()
    assert await _collect(log, after=1) == ["e2"]
    assert await _collect(log, after=-5) == ["e0", "e1", "e2"]
    assert await _collect(log, after=9) == []


async def test_one_emit_wakes_every_waiting_follower() -> None:
    log: EventLog[str] = EventLog()
    seen: list[list[str]] = [[], [], []]

    async def follow(into: list[str], after: int) -> None:
        async for event in log.follow(after):
            into.append(event)

    followers = [asyncio.create_task(follow(s, a)) for s, a in zip(seen, (-1, -1, 0), strict=True)]
    await _settle()
    log.emit("first", "second")
    await _settle()
    # Each has the events before the log closes: none slept through the emit.
    assert seen == [["first", "second"], ["first", "second"], ["second"]]
    log.emit("third")
    await _settle()
    assert [s[-1] for s in seen] == ["third"] * 3
    log.close()
    await asyncio.wait_for(asyncio.gather(*followers), 1)


async def test_a_follower_joining_after_the_end_gets_everything_and_ends() -> None:
    log = EventLog(["created"])
    log.emit("completed")
    log.close()
    assert await asyncio.wait_for(_collect(log), 1) == ["created", "completed"]
