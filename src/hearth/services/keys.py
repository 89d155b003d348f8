"""API key checks: the static keys of settings (`--api-key`) and the keys in the
database (`hearth keys create`). Keys are compared as SHA-256 digests; the database
holds only the digest.

Authentication is required once a static key is configured or the database holds any
key row at all, revoked and expired ones included: creating the first key closes the
server (within the cache's second), and revoking the last one does not open it again.

A database key is looked up by digest and the answer cached for at most `ttl` (1 s), so
a revoke from another process (the CLI) takes effect within about a second, and a burst
of requests costs one query per key per second. What a key has running when it is
revoked is ended too (key_watch.py). A key's `last_used_at` is written at
most once a minute per process, in the background, never on the request's path.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

from hearth.core.errors import StoreUnavailable
from hearth.core.principal import OPEN, STATIC, Limits, Principal
from hearth.services.key_watch import KeyWatch
from hearth.store.api_keys import ApiKeys
from hearth.store.models import ApiKey

log = logging.getLogger(__name__)

KEY_PREFIX = "hth_"
SHOWN_CHARS = 12  # the visible prefix: "hth_" and 8 characters of the random part
CACHE_TTL = 1.0
TOUCH_EVERY = 60.0
MAX_CACHED = 10_000  # wrong keys are cached too; a flood of them must not grow memory


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_key() -> tuple[str, str, str]:
    """A fresh random key: (the key, its visible prefix, its hex digest)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:SHOWN_CHARS], digest(key).hex()


def principal_of(key: ApiKey) -> Principal:
    return Principal(
        name=key.name,
        key_id=key.id,
        admin=key.admin,
        models=None if key.models is None else frozenset(key.models),
        limits=Limits(
            rpm=key.rpm,
            tpm=key.tpm,
            max_concurrent=key.max_concurrent,
            budget_tokens=key.budget_tokens,
            budget_period=key.budget_period,  # type: ignore[arg-type]
        ),
    )


def usable(key: ApiKey, now: float) -> bool:
    if key.revoked_at is not None:
        return False
    return key.expires_at is None or now < key.expires_at


class Keyring:
    """Which presented keys are let in. Without static keys and without a database (or
    one with no keys), authentication is off."""

    def __init__(
        self,
        keys: list[str] | tuple[str, ...] = (),
        stored: ApiKeys | None = None,
        *,
        ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._digests = [digest(k) for k in keys]
        self._stored = stored
        self._ttl = ttl
        self._clock = clock
        self._any_stored: tuple[float, bool] | None = None  # (fetched at, answer)
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._touched: dict[str, float] = {}
        self._touches: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        self.watch = KeyWatch(stored)  # what stored keys have running

    async def enabled(self) -> bool:
        if self._digests:
            return True
        if self._stored is None:
            return False
        now = self._clock()
        known = self._any_stored
        # Once true it stays true (rows are never deleted): no more queries.
        if known is not None and (known[1] or now - known[0] < self._ttl):
            return known[1]
        try:
            self._any_stored = (now, await self._stored.any())
        except StoreUnavailable:
            if known is None:
                raise  # never asked: refused (503), not an open door
            # Keys are only made in the database: none was made while it is away, so the
            # last answer holds, and what needs no store works through an outage.
            return known[1]
        return self._any_stored[1]

    async def verify(self, presented: str | None) -> bool:
        return await self.identify(presented) is not None

    async def identify(self, presented: str | None) -> Principal | None:
        """Whom a presented key stands for (OPEN when authentication is off); None when
        it is missing, wrong, revoked or expired."""
        if not await self.enabled():
            return OPEN
        if not presented:
            return None
        candidate = digest(presented)
        ok = False
        for known in self._digests:  # no early exit: time does not depend on which matched
            ok |= hmac.compare_digest(candidate, known)
        if ok:
            return STATIC
        key = await self._lookup(candidate.hex())
        if key is None or not usable(key, time.time()):
            return None
        self._touch(key)
        return principal_of(key)

    async def _lookup(self, hex_digest: str) -> ApiKey | None:
        if self._stored is None:
            return None
        now = self._clock()
        cached = self._cache.get(hex_digest)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        key = await self._stored.by_digest(hex_digest)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[hex_digest] = (now, key)
        return key

    def revoked(self, key: ApiKey) -> int:
        """A key revoked through this process: refused from now on, not a second later,
        and what it has running is ended at once (how many things that was)."""
        self._cache.pop(key.digest, None)
        return self.watch.end_key(key.id)

    def _touch(self, key: ApiKey) -> None:
        now = self._clock()
        last = self._touched.get(key.id)
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[key.id] = now
        task = asyncio.create_task(self._record_use(key.id))
        self._touches.add(task)
        task.add_done_callback(self._touches.discard)

    async def _record_use(self, key_id: str) -> None:
        assert self._stored is not None
        try:
            await self._stored.touch(key_id, int(time.time()))
        except Exception as exc:  # a missed note of use must not fail anything
            log.warning("could not record the use of API key %s: %s", key_id, exc)
