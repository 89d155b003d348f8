"""The api_keys table on SQLite and PostgreSQL: unique names, lookup by digest, revoke by
name or prefix, last use."""

from __future__ import annotations

import pytest

from hearth.core.errors import Conflict
from hearth.core.ids import unix_now
from hearth.store import Store
from hearth.store.models import ApiKey
from tests.stored_keys import stored_key


async def test_a_key_round_trips_with_its_limits(store: Store) -> None:
    assert not await store.api_keys.any()
    _, row = stored_key(
        "alice", admin=True, rpm=60, tpm=10_000, max_concurrent=2, budget_tokens=10**10,
        budget_period="month", models=["qwen", "llama"], expires_at=unix_now() + 3600,
    )  # fmt: skip
    await store.api_keys.add(row)
    assert await store.api_keys.any()
    found = await store.api_keys.by_digest(row.digest)
    assert found is not None
    assert (found.name, found.prefix, found.admin) == ("alice", row.prefix, True)
    assert (found.rpm, found.tpm, found.max_concurrent) == (60, 10_000, 2)
    assert (found.budget_tokens, found.budget_period) == (10**10, "month")
    assert found.models == ["qwen", "llama"]
    assert found.expires_at == row.expires_at
    assert found.last_used_at is None and found.revoked_at is None
    assert await store.api_keys.by_digest("0" * 64) is None


async def test_only_the_digest_is_stored(store: Store) -> None:
    key, row = stored_key("bob")
    await store.api_keys.add(row)
    [stored] = await store.api_keys.all()
    assert key not in repr([getattr(stored, c.key) for c in ApiKey.__table__.columns])
    assert stored.prefix == key[:12] and stored.prefix.startswith("hth_")


async def test_names_are_unique(store: Store) -> None:
    await store.api_keys.add(stored_key("carol")[1])
    with pytest.raises(Conflict, match="carol"):
        await store.api_keys.add(stored_key("carol")[1])
    assert [k.name for k in await store.api_keys.all()] == ["carol"]


async def test_revoke_by_name_or_prefix(store: Store) -> None:
    _, a = stored_key("a")
    _, b = stored_key("b")
    await store.api_keys.add(a)
    await store.api_keys.add(b)
    revoked = await store.api_keys.revoke("a", 1000)
    assert revoked is not None and revoked[1]
    assert revoked[0].name == "a" and revoked[0].revoked_at == 1000
    again = await store.api_keys.revoke("a", 2000)  # keeps the first time
    assert again is not None and not again[1] and again[0].revoked_at == 1000
    by_prefix = await store.api_keys.revoke(b.prefix, 3000)
    assert by_prefix is not None and by_prefix[0].name == "b"
    assert await store.api_keys.revoke("nobody", 4000) is None
    listed = [(k.name, k.revoked_at) for k in await store.api_keys.all()]
    assert listed == [("a", 1000), ("b", 3000)]


async def test_a_name_wins_over_another_keys_prefix(store: Store) -> None:
    _, a = stored_key("a")
    await store.api_keys.add(a)
    _, named = stored_key(a.prefix)  # a key whose name is the other one's prefix
    await store.api_keys.add(named)
    revoked = await store.api_keys.revoke(a.prefix, 1000)
    assert revoked is not None and revoked[0].id == named.id
    assert (await store.api_keys.by_digest(a.digest)).revoked_at is None  # type: ignore[union-attr]


async def test_touch_records_the_last_use(store: Store) -> None:
    _, row = stored_key("d")
    await store.api_keys.add(row)
    await store.api_keys.touch(row.id, 1234)
    found = await store.api_keys.by_digest(row.digest)
    assert found is not None and found.last_used_at == 1234


async def test_find_by_name_or_prefix(store: Store) -> None:
    _, a = stored_key("a")
    await store.api_keys.add(a)
    _, named = stored_key(a.prefix)
    await store.api_keys.add(named)
    assert (await store.api_keys.find("a")).id == a.id  # type: ignore[union-attr]
    assert (await store.api_keys.find(named.prefix)).id == named.id  # type: ignore[union-attr]
    assert (await store.api_keys.find(a.prefix)).id == named.id  # type: ignore[union-attr]
    assert await store.api_keys.find("nobody") is None


async def test_unusable_names_the_revoked_and_expired_among_those_asked(store: Store) -> None:
    rows = {
        name: stored_key(name, **columns)[1]
        for name, columns in [
            ("fine", {}),
            ("later", {"expires_at": 2000}),
            ("expired", {"expires_at": 1000}),
            ("revoked", {}),
            ("revoked-not-asked", {}),
        ]
    }
    for row in rows.values():
        await store.api_keys.add(row)
    await store.api_keys.revoke("revoked", 900)
    await store.api_keys.revoke("revoked-not-asked", 900)
    asked = [rows[n].id for n in ("fine", "later", "expired", "revoked")]
    gone = await store.api_keys.unusable(asked, now=1000)
    assert sorted(gone) == sorted([rows["expired"].id, rows["revoked"].id])
    assert await store.api_keys.unusable([], now=1000) == []
