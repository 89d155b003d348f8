"""The keyring: which presented API keys are let in, static ones and stored ones."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from hearth.core.errors import StoreUnavailable
from hearth.core.ids import unix_now
from hearth.services import keys
from hearth.services.keys import Keyring, digest, new_key
from hearth.store import Store
from hearth.store.models import ApiKey
from tests.stored_keys import stored_key


async def test_without_keys_authentication_is_off() -> None:
    ring = Keyring()
    assert not await ring.enabled()
    assert await ring.verify(None) and await ring.verify("") and await ring.verify("anything")


@pytest.mark.parametrize("presented", ["sk-one", "sk-two", "sk-ünï"])
async def test_each_configured_key_is_let_in(presented: str) -> None:
    ring = Keyring(["sk-one", "sk-two", "sk-ünï"])
    assert await ring.enabled()
    assert await ring.verify(presented)


@pytest.mark.parametrize("presented", [None, "", "sk-on", "sk-one ", "SK-ONE", "sk-onesk-two"])
async def test_anything_else_is_refused(presented: str | None) -> None:
    assert not await Keyring(("sk-one", "sk-two")).verify(presented)


def test_keys_are_held_as_sha256_digests_only() -> None:
    assert digest("sk-ünï") == hashlib.sha256("sk-ünï".encode()).digest()
    ring = Keyring(["sk-secret"])
    assert "sk-secret" not in repr(vars(ring))


async def test_every_key_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: how long a check takes does not tell which key matched."""
    compared: list[bytes] = []
    real = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", compare)
    ring = Keyring(["a", "b", "c"])
    assert await ring.verify("a")
    assert compared == [digest("a"), digest("b"), digest("c")]


# ---- keys in the database -----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _add(store: Store, name: str, **columns: object) -> str:
    key, row = stored_key(name, **columns)
    await store.api_keys.add(row)
    return key


async def test_the_first_stored_key_turns_authentication_on(store: Store) -> None:
    clock = Clock()
    ring = Keyring(stored=store.api_keys, clock=clock)
    assert not await ring.enabled()
    assert await ring.verify(None)
    key = await _add(store, "first")
    clock.now += 1.0  # the cached "no keys" lasts a second at most
    assert await ring.enabled()
    assert not await ring.verify(None) and not await ring.verify("hth_wrong")
    assert await ring.verify(key)
    await store.api_keys.revoke("first", unix_now())
    clock.now += 1.0
    assert await ring.enabled()  # revoking the last key does not open the server
    assert not await ring.verify(key) and not await ring.verify(None)


async def test_a_revoke_takes_effect_within_the_cache_ttl(store: Store) -> None:
    clock = Clock()
    ring = Keyring(["sk-static"], store.api_keys, clock=clock)
    key = await _add(store, "k")
    assert await ring.verify(key) and await ring.verify("sk-static")
    await store.api_keys.revoke("k", unix_now())
    clock.now += 0.5
    assert await ring.verify(key)  # still the cached answer
    clock.now += 0.5
    assert not await ring.verify(key)
    assert await ring.verify("sk-static")  # static keys stay


async def test_expired_keys_are_refused(store: Store) -> None:
    ring = Keyring(stored=store.api_keys)
    expired = await _add(store, "old", expires_at=unix_now() - 1)
    current = await _add(store, "new", expires_at=unix_now() + 3600)
    assert not await ring.verify(expired)
    assert await ring.verify(current)


async def test_lookups_are_cached_and_uses_recorded_once_a_minute(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    ring = Keyring(stored=store.api_keys, clock=clock)
    key = await _add(store, "busy")
    queries: list[str] = []
    real_lookup = store.api_keys.by_digest

    async def by_digest(hex_digest: str) -> ApiKey | None:
        queries.append(hex_digest)
        return await real_lookup(hex_digest)

    monkeypatch.setattr(store.api_keys, "by_digest", by_digest)
    for _ in range(50):
        assert await ring.verify(key)
    assert len(queries) == 1
    await asyncio.sleep(0.2)  # the background note of use
    [row] = await store.api_keys.all()
    assert row.last_used_at is not None
    await store.api_keys.touch(row.id, 5)
    clock.now += 30
    assert await ring.verify(key)
    await asyncio.sleep(0.2)
    assert (await store.api_keys.all())[0].last_used_at == 5  # not within the minute
    clock.now += 31
    assert await ring.verify(key)
    await asyncio.sleep(0.2)
    assert (await store.api_keys.all())[0].last_used_at != 5
    assert len(queries) == 3


def test_new_keys_are_random_with_a_visible_prefix() -> None:
    key, prefix, hex_digest = new_key()
    assert key.startswith("hth_") and len(key) > 40 and key.startswith(prefix)
    assert prefix.startswith("hth_") and len(prefix) == 12
    assert hex_digest == digest(key).hex()
    assert new_key()[0] != key


async def test_an_outage_keeps_the_last_answer_on_whether_keys_exist() -> None:
    """No key can be made while the database is away: a server without keys stays open
    through an outage; one that never got an answer is refused (tests/api/test_auth.py)."""

    class Flaky:
        down = False

        async def any(self) -> bool:
            if self.down:
                raise StoreUnavailable("The database is unavailable at the moment.")
            return False

    now = [0.0]
    stored = Flaky()
    ring = Keyring(stored=stored, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not await ring.enabled()
    stored.down, now[0] = True, 5.0
    assert not await ring.enabled()  # the last answer, not a 503
    assert await ring.verify(None)
