"""The key watch: what stored keys have running is ended when the key is revoked, at
once through this process, within about a second from another."""

from __future__ import annotations

import asyncio
import time

from hearth.core.errors import Unauthorized
from hearth.core.ids import unix_now
from hearth.services.key_watch import KeyWatch
from hearth.services.keys import Keyring
from hearth.store import Store
from tests.stored_keys import stored_key


class Ended:
    """A running thing's `end`: records when, and with what, it was ended."""

    def __init__(self) -> None:
        self.errors: list[Unauthorized] = []
        self.at: float | None = None

    def __call__(self, err: Unauthorized) -> None:
        self.errors.append(err)
        self.at = time.monotonic()


async def _key(store: Store, name: str, **columns: object) -> str:
    _, row = stored_key(name, **columns)
    await store.api_keys.add(row)
    return row.id


async def test_a_revoke_elsewhere_ends_the_keys_work_within_the_watch_interval(
    store: Store,
) -> None:
    watch = KeyWatch(store.api_keys, every=0.1)
    revoked, kept = await _key(store, "revoked"), await _key(store, "kept")
    first, second, other = Ended(), Ended(), Ended()
    watch.add(revoked, first)
    watch.add(revoked, second)
    watch.add(kept, other)
    await asyncio.sleep(0.25)
    assert not first.errors and not other.errors  # nothing revoked yet: nothing ended
    await store.api_keys.revoke("revoked", unix_now())  # as another process would
    start = time.monotonic()
    while first.at is None:
        assert time.monotonic() - start < 1.0, "not ended"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert len(first.errors) == len(second.errors) == 1  # each ended once
    assert first.errors[0].status == 401 and "revoked" in first.errors[0].message
    assert not other.errors and watch.watching == 1
    # Nothing left to watch: the watcher stops before the store closes (left polling, its
    # last query could finish after this test's event loop has closed).
    watch.discard(kept, other)
    await asyncio.sleep(0.3)


async def test_an_expiry_ends_the_keys_work(store: Store) -> None:
    watch = KeyWatch(store.api_keys, every=0.1)
    ended = Ended()
    watch.add(await _key(store, "brief", expires_at=unix_now() + 1), ended)
    start = time.monotonic()
    while ended.at is None:
        assert time.monotonic() - start < 3.0, "not ended"
        await asyncio.sleep(0.05)
    assert watch.watching == 0


async def test_the_watcher_runs_only_while_something_is_held(store: Store) -> None:
    watch = KeyWatch(store.api_keys, every=0.05)
    key_id = await _key(store, "k")
    calls = 0
    real = store.api_keys.unusable

    async def counted(ids: list[str], now: int) -> list[str]:
        nonlocal calls
        calls += 1
        return await real(ids, now)

    store.api_keys.unusable = counted  # type: ignore[method-assign]
    with watch.hold(key_id, Ended()):
        await asyncio.sleep(0.3)
    assert calls >= 2
    await asyncio.sleep(0.1)
    seen = calls
    await asyncio.sleep(0.3)
    assert calls == seen and watch.watching == 0  # idle: no queries
    with watch.hold(key_id, Ended()):  # and it starts again when needed
        await asyncio.sleep(0.2)
    assert calls > seen


async def test_a_database_away_for_a_moment_is_retried(store: Store) -> None:
    watch = KeyWatch(store.api_keys, every=0.05)
    key_id = await _key(store, "k")
    fail = True
    real = store.api_keys.unusable

    async def flaky(ids: list[str], now: int) -> list[str]:
        if fail:
            raise OSError("database away")
        return await real(ids, now)

    store.api_keys.unusable = flaky  # type: ignore[method-assign]
    ended = Ended()
    watch.add(key_id, ended)
    await asyncio.sleep(0.2)
    await store.api_keys.revoke("k", unix_now())
    fail = False
    await asyncio.sleep(0.3)
    assert ended.errors


async def test_a_revoke_through_the_keyring_ends_at_once_and_refuses_the_key_at_once(
    store: Store,
) -> None:
    key, row = stored_key("mine")
    await store.api_keys.add(row)
    ring = Keyring(stored=store.api_keys)
    assert await ring.verify(key)  # cached as good for a second
    ended = Ended()
    ring.watch.add(row.id, ended)
    found = await store.api_keys.revoke("mine", unix_now())
    assert found is not None
    assert ring.revoked(found[0]) == 1
    assert ended.errors  # no wait for the watcher
    assert not await ring.verify(key)  # nor for the cache
    assert ring.revoked(found[0]) == 0
