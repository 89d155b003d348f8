"""Places for loaded models under max_loaded: which idle model gives up its place, and
the loads that wait for one, first come, first served, for at most the queue timeout."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from hearth.core.errors import HearthError, ModelNotFound, QueueTimeout
from hearth.engine.base import Backend

Loading = asyncio.Task[Backend]


class Place(Protocol):
    """What the queue needs of a registry entry."""

    name: str
    backend: Backend | None
    loading: Loading | None
    leases: int
    last_used: float
    removed: bool


P = TypeVar("P", bound=Place)


def least_recently_used_idle(held: list[P]) -> P | None:
    """The model to unload for another: loaded, held by no request, used longest ago."""
    idle = [p for p in held if p.backend is not None and not p.leases]
    return min(idle, key=lambda p: p.last_used) if idle else None


@dataclass
class _Waiter(Generic[P]):
    entry: P
    # The model's loading task once it has a place (None: it is loaded already).
    granted: asyncio.Future[Loading | None]


class LoadQueue(Generic[P]):
    """`start(entry)` begins a load if the entry has a place (None if not); the queue
    calls it for the waiting loads in order whenever `grant()` says a place may be free."""

    def __init__(self, start: Callable[[P], Loading | None]) -> None:
        self._start = start
        self._waiting: deque[_Waiter[P]] = deque()

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait(self, entry: P, patience: float, places: int) -> Loading | None:
        waiter = _Waiter(entry, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(patience):
                return await waiter.granted
        except TimeoutError:
            raise QueueTimeout(
                f"The model '{entry.name}' waited {patience:g}s for one of the {places} "
                "loaded models to be free; retry later",
                retry_after=1.0,
            ) from None
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                self.grant()  # it may have held up the others

    def grant(self) -> None:
        """Any waiting load whose model has come (or is loading) joins it; then, in order
        of arrival, each that has a place now starts, and the first that has none holds
        up those behind it."""
        while self._waiting:
            for waiter in list(self._waiting):
                entry = waiter.entry
                if waiter.granted.done():
                    pass
                elif entry.removed:
                    gone = f"The model '{entry.name}' does not exist"
                    waiter.granted.set_exception(ModelNotFound(gone, param="model"))
                elif entry.backend is not None or entry.loading is not None:
                    waiter.granted.set_result(entry.loading)
                else:
                    continue
                self._waiting.remove(waiter)
            if not self._waiting:
                return
            task = self._start(self._waiting[0].entry)
            if task is None:
                return
            self._waiting.popleft().granted.set_result(task)

    def fail(self, error: HearthError) -> None:
        for waiter in self._waiting:
            if not waiter.granted.done():
                waiter.granted.set_exception(error)
        self._waiting.clear()
