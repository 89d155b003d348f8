"""A job's event log: every event it emitted, in order, for any number of followers, who
may join at any point (a stream resumed after its Nth event) and who all end with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Generic, TypeVar

E = TypeVar("E")


class EventLog(Generic[E]):
    def __init__(self, opening: Iterable[E] = ()) -> None:
        self.events: list[E] = list(opening)
        self.done = asyncio.Event()
        self._changed = asyncio.Event()

    def emit(self, *events: E) -> None:
        self.events.extend(events)
        self._wake()

    def close(self) -> None:
        """The job has ended: every follower stops after the last event."""
        self.done.set()
        self._wake()

    def _wake(self) -> None:
        # Swapped rather than cleared: a follower woken by this change may not have run
        # yet, and a clear before it does would put it back to sleep.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self, after: int = -1) -> AsyncIterator[E]:
        """The events after the one numbered `after` (from 0): those so far, then each as
        it comes, until the log closes."""
        index = max(after + 1, 0)
        while True:
            changed = self._changed
            while index < len(self.events):
                index += 1
                yield self.events[index - 1]
            if self.done.is_set():
                return
            await changed.wait()
