"""One piece of background work (a background response, a stretch of an assistant run):
a task that goes on without its client, emits its events to an EventLog, and ends one
way or another, always with its ending saved and announced.

A kind of job says how it works (`work`), how it ends (`end`), what it gives back
(`release`), what the store's ending elsewhere means for it (`ended_elsewhere`), and when
its ending is decided. The JobTable (table.py) runs it, stops it and owns it.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar, Generic, TypeVar

from hearth.services.jobs.events import EventLog

log = logging.getLogger(__name__)

E = TypeVar("E")


class EndedElsewhere(Exception):
    """The store has the job's object ended by someone else: cancelled or deleted through
    another server, or failed by a sweep. The job stops and writes nothing more."""


class Job(ABC, Generic[E]):
    kind: ClassVar[str] = "job"
    # The errors it ends with when the server stops it, when the key that started it is
    # revoked, and when it has a bug.
    STOPPED: ClassVar[dict[str, Any]]
    REVOKED: ClassVar[dict[str, Any]]
    INTERNAL: ClassVar[dict[str, Any]]

    def __init__(self, key: str, opening: Iterable[E] = ()) -> None:
        self.key = key
        self.log: EventLog[E] = EventLog(opening)
        self.task: asyncio.Task[None] | None = None
        # Why it was stopped: "cancelled" (by its client), "revoked" (its key) or "shutdown".
        self.cancel_reason: str | None = None
        self.started = False

    @property
    def done(self) -> asyncio.Event:
        """Set once its ending is saved and announced."""
        return self.log.done

    def subscribe(self, after: int = -1) -> AsyncIterator[E]:
        return self.log.follow(after)

    # ---- what a kind of job says -----------------------------------------------------

    @property
    @abstractmethod
    def decided(self) -> bool:
        """Whether its ending is decided, and being saved: a stop then lets it finish."""

    @abstractmethod
    async def work(self) -> None:
        """Do the job, up to its ending (saved and announced with `end`)."""

    @abstractmethod
    async def end(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Save this ending (unless the store has another) and announce it."""

    @abstractmethod
    async def ended_elsewhere(self) -> None:
        """Announce the ending the store has (see EndedElsewhere)."""

    async def release(self) -> None:
        """Give back what it holds (its generation), however it ended."""

    async def crashed(self) -> None:
        await self.end("failed", self.INTERNAL)

    # ---- running ----------------------------------------------------------------------

    async def execute(self) -> None:
        """The task's body: the work, then its ending, whichever way it went."""
        self.started = True
        try:
            if self.cancel_reason is not None:  # stopped before its task began
                raise asyncio.CancelledError
            await self.work()
        except EndedElsewhere:
            await self.ended_elsewhere()
        except asyncio.CancelledError:
            if self.cancel_reason == "cancelled":
                await self.end("cancelled")
            elif self.cancel_reason == "revoked":
                await self.end("failed", self.REVOKED)
            else:
                await self.end("failed", self.STOPPED)
        except Exception:  # a bug or a database fault: logged; the client sees no details
            log.exception("%s %s failed", self.kind, self.key)
            await self.crashed()
        finally:
            try:
                await self.release()
            finally:
                self.log.close()
