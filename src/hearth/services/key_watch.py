"""What database keys have running (HTTP requests, WebSockets), so that a revoke or an
expiry ends it within about a second.

A revoke through this process (the admin API) ends the key's work at once. One from
another process (`hearth keys revoke`, another replica) is seen by a watcher that, only
while some key has something running, asks the store once a second which of those keys
are revoked or expired (one query for all of them) and ends their work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from hearth.core.errors import Unauthorized
from hearth.store.api_keys import ApiKeys

log = logging.getLogger(__name__)

# Ends one running thing with the error its client is to get.
End = Callable[[Unauthorized], None]

REVOKED = "This API key was revoked or has expired."
WATCH_EVERY = 1.0


class KeyWatch:
    def __init__(self, stored: ApiKeys | None, *, every: float = WATCH_EVERY) -> None:
        self._stored = stored
        self._every = every
        self._live: dict[str, set[End]] = {}
        self._watcher: asyncio.Task[None] | None = None

    @property
    def watching(self) -> int:
        """How many keys have something running."""
        return len(self._live)

    def add(self, key_id: str, end: End) -> None:
        self._live.setdefault(key_id, set()).add(end)
        if self._stored is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="key watch")

    def discard(self, key_id: str, end: End) -> None:
        ends = self._live.get(key_id)
        if ends is not None:
            ends.discard(end)
            if not ends:
                del self._live[key_id]

    @contextlib.contextmanager
    def hold(self, key_id: str, end: End) -> Iterator[None]:
        self.add(key_id, end)
        try:
            yield
        finally:
            self.discard(key_id, end)

    def end_key(self, key_id: str) -> int:
        """End what this key has running (each once); how many things that was."""
        ends = self._live.pop(key_id, set())
        for end in ends:
            end(Unauthorized(REVOKED))
        return len(ends)

    async def _watch(self) -> None:
        assert self._stored is not None
        try:
            while self._live:
                await asyncio.sleep(self._every)
                if not self._live:
                    break
                try:
                    gone = await self._stored.unusable(list(self._live), int(time.time()))
                except Exception as exc:  # the database away for a moment: next second
                    log.warning("could not check the running keys: %s", exc)
                    continue
                for key_id in gone:
                    self.end_key(key_id)
        finally:
            # No await between the last look at _live and this: an `add` after it starts
            # a new watcher.
            self._watcher = None
