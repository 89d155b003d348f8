"""Model name → loaded backend. The only place that knows which backend serves a name.

Backends are built by factories and loaded on first use with single flight (ten
concurrent first requests load once). A request holds a lease on its model for as long as
it runs; a model nobody holds is unloaded once its keep-alive has passed (Ollama's
`keep_alive`, per request or the server default; None keeps it loaded). Aliases point at
registered names, optionally with a Profile (a derived model: system prompt, default
options, template); with a Catalog they survive restarts. A name that is not registered
is an error, never a file path.

Every lookup and listing answers for the key the current request acts for
(core/principal): a model the key may not use is missing exactly as an unknown one is, so
no surface can confirm that it exists. Code outside requests (start-up) acts as OPEN and
sees every model.

With `max_loaded` set, at most that many local models are loaded (or loading) at once:
loading another unloads the least recently used one that no request holds, and when every
loaded model is held the load waits its turn (first come, first served) until one is free,
for at most `queue_timeout` seconds (then QueueTimeout, a 503). A model in use is never
unloaded under its requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from hearth.core import principal
from hearth.core.errors import (
    Conflict,
    EngineError,
    Forbidden,
    HearthError,
    ModelNotFound,
    ShuttingDown,
)
from hearth.engine.base import Backend, Pooled
from hearth.engine.catalog import Catalog, CatalogEntry, Profile
from hearth.engine.meter import RunMeter
from hearth.engine.places import Loading, LoadQueue, least_recently_used_idle
from hearth.engine.types import MemberStatus

log = logging.getLogger(__name__)

BackendFactory = Callable[[], Awaitable[Backend]]
LOAD_FAILED = "the model could not be loaded; the server log says why"
# The names are shared by every key: a tenant's key would otherwise change what other
# keys see, and one limited to some models would learn of hidden names (a conflict).
CHANGE_NEEDS_ADMIN = "Adding, changing or removing models needs an admin key."


class _Default:
    """Marks "use the server's keep-alive" (None already means "forever")."""


DEFAULT = _Default()
KeepAlive = float | None | _Default


@dataclass
class _Entry:
    name: str
    factory: BackendFactory
    backend: Backend | None = None
    loading: asyncio.Task[Backend] | None = None
    loaded_at: float | None = None
    expires_at: float | None = None  # wall-clock time; None: never
    leases: int = 0
    error: str | None = None
    removed: bool = False  # gone from the registry; unloaded when its last lease ends
    loaded_before: bool = False
    keep_alive: KeepAlive = DEFAULT  # the model's own, from its config entry
    profile: Profile = field(default_factory=Profile)  # its entry's system and options
    # Counts against max_loaded: a model in this process's memory (an upstream pool
    # costs none here).
    bounded: bool = True
    last_used: float = 0.0  # monotonic; the least recently used idle model makes room
    unload_when_idle: bool = False  # asked to unload while in use: when its last lease ends


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    state: str  # "unloaded" | "loading" | "loaded" | "failed"
    in_use: int  # requests holding it
    loaded_at: float | None
    expires_at: float | None
    error: str | None
    stats: dict[str, int] | None
    members: tuple[MemberStatus, ...] = ()  # a pool's engines (engine/upstream)
    # Loaded before in this process: loading again is a swap (--max-loaded-models) or a
    # reload after its keep-alive, which /health does not call unready.
    loaded_before: bool = False


class ModelRegistry:
    def __init__(
        self,
        keep_alive: float | None = None,
        catalog: Catalog | None = None,
        *,
        max_loaded: int = 0,
        queue_timeout: float = 600.0,
    ) -> None:
        self.keep_alive = keep_alive
        self.max_loaded = max_loaded  # 0: no limit
        self.queue_timeout = queue_timeout
        self._waiting = LoadQueue(self._start)
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, CatalogEntry] = {}
        self._config_aliases: dict[str, CatalogEntry] = {}
        self._catalog = catalog
        self._reaper: asyncio.Task[None] | None = None
        # Removed models that requests still hold, by identity (a new model may reuse
        # the name meanwhile).
        self._retired: dict[int, _Entry] = {}
        # Told how each generation went (services/generation.py); None records nothing.
        self.meter: RunMeter | None = None

    def load_catalog(self) -> None:
        """Restore the aliases and derived models of earlier runs whose base still exists."""
        if self._catalog is None:
            return
        for name, entry in self._catalog.load().items():
            if entry.target in self._entries and name not in self._entries:
                self._aliases[name] = entry

    def _save(self) -> None:
        if self._catalog is not None:
            self._catalog.save(self._aliases)

    # ---- names -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        factory: BackendFactory,
        *,
        keep_alive: KeepAlive = DEFAULT,
        profile: Profile | None = None,
        aliases: tuple[str, ...] = (),
        bounded: bool = True,
    ) -> None:
        """A served model; `aliases` are other names for it from its config entry (kept
        out of the catalog: the config file says them again at each start). One not
        `bounded` loads without counting against max_loaded."""
        self._entries[name] = _Entry(
            name=name,
            factory=factory,
            keep_alive=keep_alive,
            profile=profile or Profile(),
            bounded=bounded,
        )
        for alias in aliases:
            self._config_aliases[alias] = CatalogEntry(name)

    def _target(self, name: str) -> str | None:
        """The registered model a name stands for, if the current key may see it: a key
        sees a name it lists, and an alias of a model it lists."""
        alias = self._aliases.get(name) or self._config_aliases.get(name)
        target = alias.target if alias is not None else name
        if target not in self._entries or not principal.current().sees(name, target):
            return None
        return target

    def names(self) -> list[str]:
        """Registered models, then aliases."""
        every = [*self._entries, *self._config_aliases, *self._aliases]
        return [n for n in every if self._target(n) is not None]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._target(name) is not None

    def resolve(self, name: str) -> str:
        """The registered model a name (or alias) stands for."""
        target = self._target(name)
        if target is None:
            raise ModelNotFound(f"The model '{name}' does not exist", param="model")
        return target

    def profile(self, name: str) -> Profile:
        """What a derived model adds to its base, or what a model's config entry sets
        (an alias of a configured model shares its entry's)."""
        if name not in self:
            return Profile()
        alias = self._aliases.get(name)
        if alias is not None:
            return alias.profile
        return self._entries[self.resolve(name)].profile

    @staticmethod
    def check_may_change() -> None:
        """Refuse `alias()` and `remove()` to the current key before work they would waste."""
        if not principal.current().admin:
            raise Forbidden(CHANGE_NEEDS_ADMIN)

    def alias(self, alias: str, target: str, profile: Profile | None = None) -> None:
        """Create or replace `alias` → target (copy), or a derived model (create). A
        derived model's own profile is folded into the new one, so chains stay flat."""
        self.check_may_change()
        if alias in self._entries or alias in self._config_aliases:
            raise Conflict(f"'{alias}' is a configured model and cannot be replaced")
        base = self.profile(target)
        merged = profile or Profile()
        if not base.empty:
            merged = Profile(
                system=merged.system if merged.system is not None else base.system,
                template=merged.template if merged.template is not None else base.template,
                options={**base.options, **merged.options},
            )
        self._aliases[alias] = CatalogEntry(self.resolve(target), merged)
        self._save()

    def aliases(self) -> dict[str, str]:
        every = {**self._config_aliases, **self._aliases}
        return {name: e.target for name, e in every.items() if name in self}

    async def remove(self, name: str) -> None:
        """Forget an alias, or a model and every alias of it. The model is unloaded at
        once, or, while requests hold it, when the last of them ends."""
        self.check_may_change()
        if name in self._aliases:
            del self._aliases[name]
            self._save()
            return
        if name in self._config_aliases:
            del self._config_aliases[name]
            return
        entry = self._entry(name)
        del self._entries[name]
        self._aliases = {a: e for a, e in self._aliases.items() if e.target != name}
        self._config_aliases = {a: e for a, e in self._config_aliases.items() if e.target != name}
        self._save()
        # New requests no longer find it; those running finish on it first.
        entry.removed = True
        if entry.leases:
            self._retired[id(entry)] = entry
        else:
            await self._unload(entry)
        self._waiting.grant()  # a load waiting for it learns it is gone

    def _entry(self, name: str) -> _Entry:
        return self._entries[self.resolve(name)]

    # ---- loading and leases ----------------------------------------------------------

    def loaded(self, name: str) -> Backend | None:
        return self._entry(name).backend

    async def preload(self) -> None:
        """Load the configured models, in order, as many as max_loaded allows."""
        places = self.max_loaded or len(self._entries)
        for entry in list(self._entries.values()):
            if entry.bounded:
                if not places:
                    continue
                places -= 1
            await self.get(entry.name)

    async def get(self, name: str, keep_alive: KeepAlive = DEFAULT) -> Backend:
        """Load if needed and set when the model may be unloaded. Holds no lease: use
        `lease()` for anything that runs on the backend."""
        entry = self._entry(name)
        backend = await self._load(entry)
        self._touch(entry, keep_alive)
        return backend

    @contextlib.asynccontextmanager
    async def lease(self, name: str, keep_alive: KeepAlive = DEFAULT) -> AsyncIterator[Backend]:
        """The backend, kept loaded until the block exits; the keep-alive counts from then."""
        entry = self._entry(name)
        entry.leases += 1
        try:
            yield await self._load(entry)
        finally:
            entry.leases -= 1
            self._touch(entry, keep_alive)
            if (entry.removed or entry.unload_when_idle) and not entry.leases:
                self._retired.pop(id(entry), None)
                await self._unload(entry)
            self._waiting.grant()  # idle now: a load waiting for room may take its place

    async def acquire(self, name: str, keep_alive: KeepAlive = DEFAULT) -> tuple[Backend, Release]:
        """`lease()` for holders that outlive a block (a streamed reply): call the release."""
        manager = self.lease(name, keep_alive)
        backend = await manager.__aenter__()

        async def release() -> None:
            await manager.__aexit__(None, None, None)

        return backend, release

    def _touch(self, entry: _Entry, keep_alive: KeepAlive) -> None:
        if isinstance(keep_alive, _Default):
            keep_alive = entry.keep_alive
        seconds = self.keep_alive if isinstance(keep_alive, _Default) else keep_alive
        entry.expires_at = None if seconds is None or seconds < 0 else time.time() + seconds
        entry.last_used = time.monotonic()

    async def _load(self, entry: _Entry) -> Backend:
        while entry.backend is None:
            task = entry.loading or await self._place(entry)
            if task is not None:
                # shield: one impatient caller must not cancel the load the others wait for
                return await asyncio.shield(task)
        return entry.backend

    # ---- room under max_loaded -------------------------------------------------------

    def _held(self) -> list[_Entry]:
        """The models that take a place: loaded or loading, removed ones still in use too."""
        every = [*self._entries.values(), *self._retired.values()]
        return [e for e in every if e.bounded and (e.backend is not None or e.loading is not None)]

    def _start(self, entry: _Entry) -> Loading | None:
        """Start loading `entry` if it has a place, unloading the least recently used
        idle model to make one; None if every place is held by a model in use."""
        victim = None
        if entry.bounded and self.max_loaded:
            held = self._held()
            if len(held) >= self.max_loaded:
                victim = least_recently_used_idle(held)
                if victim is None:
                    return None
        # Taken now, so the place is this load's before anything else runs; the old model
        # is closed before the new one loads, so memory holds at most max_loaded.
        evicted = (victim.name, self._detach(victim)) if victim is not None else None
        entry.loading = asyncio.create_task(self._build(entry, evicted))
        return entry.loading

    async def _place(self, entry: _Entry) -> Loading | None:
        """Start loading `entry`, after the loads already waiting for a place."""
        if not self._waiting or not entry.bounded:
            task = self._start(entry)
            if task is not None:
                return task
        log.info("model %s waits for a place: every loaded model is in use", entry.name)
        return await self._waiting.wait(entry, self.queue_timeout, self.max_loaded)

    async def _build(
        self, entry: _Entry, evicted: tuple[str, Backend | None] | None = None
    ) -> Backend:
        started = time.monotonic()
        try:
            if evicted is not None:
                await self._close(*evicted, why=f" to make room for {entry.name}")
            log.info("loading model %s", entry.name)
            backend = await entry.factory()
        except HearthError:
            entry.loading = None
            self._waiting.grant()
            raise
        except Exception as exc:
            entry.loading = None
            self._waiting.grant()
            # The cause names files of this machine (the GGUF's path, llama.cpp's words):
            # the log has it; clients and the open /health get this line.
            entry.error = LOAD_FAILED
            log.exception("loading model %s failed", entry.name)
            raise EngineError(f"The model '{entry.name}' could not be loaded.") from exc
        entry.backend = backend
        entry.loaded_at = time.time()
        entry.loaded_before = True
        entry.last_used = time.monotonic()
        entry.error = None
        entry.loading = None
        log.info("loaded model %s in %.1fs", entry.name, time.monotonic() - started)
        # Loaded for get(), which holds no lease, it is idle at once: it may give way.
        self._waiting.grant()
        return backend

    async def unload(self, name: str) -> bool:
        """Unload a model now, or, while requests hold it, as soon as the last of them
        ends. True if it is unloaded (or was not loaded) on return."""
        entry = self._entry(name)
        if entry.leases:
            entry.unload_when_idle = True
            return False
        await self._unload(entry)
        self._waiting.grant()
        return True

    def _detach(self, entry: _Entry) -> Backend | None:
        backend, entry.backend = entry.backend, None
        entry.loaded_at = None
        entry.expires_at = None
        entry.unload_when_idle = False
        return backend

    async def _unload(self, entry: _Entry) -> None:
        await self._close(entry.name, self._detach(entry))

    @staticmethod
    async def _close(name: str, backend: Backend | None, why: str = "") -> None:
        if backend is None:
            return
        started = time.monotonic()
        await backend.close()
        log.info("unloaded model %s%s in %.1fs", name, why, time.monotonic() - started)

    # ---- expiry ----------------------------------------------------------------------

    async def reap(self) -> None:
        """Unload every model past its keep-alive that no request holds."""
        now = time.time()
        for entry in list(self._entries.values()):
            if (
                entry.backend is not None
                and entry.leases == 0
                and entry.expires_at is not None
                and entry.expires_at <= now
            ):
                await self._unload(entry)
                self._waiting.grant()

    def start_reaper(self, interval: float = 0.25) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.reap()
                except Exception:  # keep reaping; one bad close must not stop expiry
                    log.exception("unloading an expired model failed")

        self._reaper = asyncio.create_task(loop())

    def status(self) -> list[ModelStatus]:
        """The registered models the current key sees."""
        out = []
        for e in self._entries.values():
            if e.name not in self:
                continue
            if e.backend is not None:
                state = "loaded"
            elif e.loading is not None:
                state = "loading"
            elif e.error is not None:
                state = "failed"
            else:
                state = "unloaded"
            stats = e.backend.stats() if e.backend is not None else None
            expires = e.expires_at if e.backend is not None else None
            members = e.backend.members() if isinstance(e.backend, Pooled) else ()
            out.append(
                ModelStatus(
                    e.name,
                    state,
                    e.leases,
                    e.loaded_at,
                    expires,
                    e.error,
                    stats,
                    members,
                    loaded_before=e.loaded_before,
                )
            )
        return out

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        self._waiting.fail(ShuttingDown("The server is stopping."))
        for entry in [*self._entries.values(), *self._retired.values()]:
            if entry.loading is not None:
                entry.loading.cancel()
            await self._unload(entry)


Release = Callable[[], Awaitable[None]]
