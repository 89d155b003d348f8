"""Progress of a pull, in the fields of Ollama's pull statuses, and a pull as an async
stream of them for servers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

Report = Callable[["Progress"], None]


@dataclass(frozen=True, slots=True)
class Progress:
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}


_DONE = object()


async def events(work: Callable[[Report, threading.Event], Any]) -> AsyncIterator[Progress]:
    """Run `work(report, stop)` in a thread, yielding what it reports as it comes; its
    error is raised here after what came before. Leaving early (a client gone) sets `stop`:
    the download stops at its next chunk, its partial file kept for the next pull."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def report(progress: Progress) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, progress)

    def run() -> None:
        try:
            work(report, stop)
            outcome: object = _DONE
        except BaseException as exc:  # handed to the consumer, raised there
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, outcome)

    thread = threading.Thread(target=run, name="hearth-pull", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
