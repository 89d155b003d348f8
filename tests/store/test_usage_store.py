"""The usage table on SQLite and PostgreSQL: sums by UTC day, key and model, filtered by
a key's name or prefix and by a first day."""

from __future__ import annotations

from datetime import date

from hearth.store import Store
from hearth.store.usage import UsageTotal, Use
from tests.stored_keys import stored_key

DAY1 = 1_795_000_000 - 1_795_000_000 % 86_400  # 2026-11-18 00:00 UTC
DAY2 = DAY1 + 86_400


def use(at: int, key: str, model: str = "m", *, key_id: str | None = None, p: int = 10,
        c: int = 5, x: int = 0, status: str = "ok") -> Use:  # fmt: skip
    return Use(at, key_id, key, model, "openai", status, p, c, x)


async def test_sums_by_day_key_and_model(store: Store) -> None:
    assert await store.usage.totals() == []
    await store.usage.add([
        use(DAY1, "alice", p=3, c=4, x=1),
        use(DAY2 - 1, "alice", p=10, c=20, x=2),  # the last second of day 1
        use(DAY1 + 5, "alice", "other"),
        use(DAY1 + 7, "bob", status="cancelled"),
        use(DAY2, "alice", p=100, c=200),
    ])  # fmt: skip
    await store.usage.add([])  # nothing to write is no transaction at all
    day1, day2 = date(2026, 11, 18), date(2026, 11, 19)
    assert await store.usage.totals() == [
        UsageTotal(day1, "alice", "m", 2, 13, 24, 3),
        UsageTotal(day1, "alice", "other", 1, 10, 5, 0),
        UsageTotal(day1, "bob", "m", 1, 10, 5, 0),
        UsageTotal(day2, "alice", "m", 1, 100, 200, 0),
    ]
    assert await store.usage.totals(since=day2) == [UsageTotal(day2, "alice", "m", 1, 100, 200, 0)]
    assert await store.usage.totals(key="bob") == [UsageTotal(day1, "bob", "m", 1, 10, 5, 0)]
    assert await store.usage.totals(key="nobody") == []
    assert await store.usage.totals(key="alice", since=date(2026, 11, 20)) == []


async def test_a_database_key_is_found_by_its_prefix_too(store: Store) -> None:
    _, row = stored_key("carol")
    await store.api_keys.add(row)
    await store.usage.add([
        use(DAY1, "carol", key_id=row.id, p=7, c=8),
        use(DAY1, "static"),  # an --api-key key: no id
    ])  # fmt: skip
    by_prefix = await store.usage.totals(key=row.prefix)
    assert by_prefix == [UsageTotal(date(2026, 11, 18), "carol", "m", 1, 7, 8, 0)]
    assert by_prefix == await store.usage.totals(key="carol")
    assert [t.key for t in await store.usage.totals(key="static")] == ["static"]


async def test_large_sums_do_not_overflow(store: Store) -> None:
    # Each row fits an INTEGER; their sum does not (PostgreSQL sums integers as bigint).
    await store.usage.add([use(DAY1, "big", p=2_000_000_000, c=0) for _ in range(3)])
    [total] = await store.usage.totals()
    assert (total.requests, total.prompt_tokens) == (3, 6_000_000_000)
