"""The scheduler thread's hand-off of events to an event loop. No model is loaded."""

from __future__ import annotations

import asyncio
import threading

from hearth.engine.llama_cpp.scheduler import _deliver
from hearth.engine.types import GenerationEvent, TokenEvent


async def test_a_hand_off_is_taken_once_the_first_outputs_readers_have_run() -> None:
    """A step that produced first outputs waits on `taken` before its next decode: it must
    be set only after the readers of those events have had their turn (for a stream,
    that turn writes the chunk), not as soon as they are queued, and not wait for the
    readers of the other events."""
    queues: list[asyncio.Queue[GenerationEvent]] = [asyncio.Queue() for _ in range(3)]
    got: list[GenerationEvent] = []
    seen_when_taken: list[list[GenerationEvent]] = []

    class Taken(threading.Event):
        def set(self) -> None:
            seen_when_taken.append(list(got))
            super().set()

    async def reader(queue: asyncio.Queue[GenerationEvent]) -> None:
        got.append(await queue.get())

    readers = [asyncio.create_task(reader(q)) for q in queues]
    await asyncio.sleep(0)  # each waits on its queue
    events = [TokenEvent("first a"), TokenEvent("first b"), TokenEvent("later")]
    taken = Taken()
    _deliver(list(zip(queues, events, strict=True)), taken, firsts=2)
    assert not taken.is_set() and not got  # nothing runs until the loop's next turn
    await asyncio.gather(*readers)
    assert taken.is_set() and got == events
    assert seen_when_taken == [events[:2]]


async def test_a_hand_off_without_a_wait_only_queues_the_events() -> None:
    queue: asyncio.Queue[GenerationEvent] = asyncio.Queue()
    _deliver([(queue, TokenEvent("a"))])
    assert queue.get_nowait() == TokenEvent("a")
