"""Model name → loaded backend. The only place that knows which backend serves a name.

Backends are built by factories, loaded on first use with single flight (ten concurrent
first requests load once), and closed on shutdown. A name that is not registered is an
error, never a file path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hearth.core.errors import HearthError, ModelNotFound
from hearth.engine.base import Backend

log = logging.getLogger(__name__)

BackendFactory = Callable[[], Awaitable[Backend]]


@dataclass
class _Entry:
    name: str
    factory: BackendFactory
    backend: Backend | None = None
    loading: asyncio.Task[Backend] | None = None
    loaded_at: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    state: str  # "unloaded" | "loading" | "loaded" | "failed"
    loaded_at: float | None
    error: str | None
    stats: dict[str, int] | None


class ModelRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def register(self, name: str, factory: BackendFactory) -> None:
        self._entries[name] = _Entry(name=name, factory=factory)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise ModelNotFound(f"The model '{name}' does not exist", param="model")
        return entry

    def loaded(self, name: str) -> Backend | None:
        return self._entry(name).backend

    async def get(self, name: str) -> Backend:
        entry = self._entry(name)
        if entry.backend is not None:
            return entry.backend
        if entry.loading is None:
            entry.loading = asyncio.create_task(self._load(entry))
        # shield: one impatient caller must not cancel the load the others wait for
        return await asyncio.shield(entry.loading)

    async def _load(self, entry: _Entry) -> Backend:
        started = time.monotonic()
        try:
            backend = await entry.factory()
        except HearthError:
            entry.loading = None
            raise
        except Exception as exc:
            entry.loading = None
            entry.error = str(exc)
            log.exception("loading model %s failed", entry.name)
            raise
        entry.backend = backend
        entry.loaded_at = time.time()
        entry.error = None
        entry.loading = None
        log.info("loaded model %s in %.1fs", entry.name, time.monotonic() - started)
        return backend

    def status(self) -> list[ModelStatus]:
        out = []
        for e in self._entries.values():
            if e.backend is not None:
                state = "loaded"
            elif e.loading is not None:
                state = "loading"
            elif e.error is not None:
                state = "failed"
            else:
                state = "unloaded"
            stats = e.backend.stats() if e.backend is not None else None
            out.append(ModelStatus(e.name, state, e.loaded_at, e.error, stats))
        return out

    async def close(self) -> None:
        for entry in self._entries.values():
            if entry.loading is not None:
                entry.loading.cancel()
            if entry.backend is not None:
                backend, entry.backend = entry.backend, None
                await backend.close()
