"""The shared counters on SQLite and PostgreSQL: conditional takes that admit exactly the
limit when two stores (two replicas' connections) race on one database, refusals that
change nothing, unconditional charges, and the budget's period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hearth.store import Store
from hearth.store.limits import Busy, Counters, Hold, Take

NOW = 1_800_000_000.0
WINDOW = 60.0


@pytest.fixture
async def other(store: Store, database_url: str) -> AsyncIterator[Store]:
    """A second store on the same database, as another replica has."""
    s = Store(database_url)
    yield s
    await s.close()


def request(now: float = NOW, rpm: int = 5) -> Take:
    return Take(now=now, window=WINDOW, requests=WINDOW / rpm)


async def test_racing_takes_from_two_replicas_admit_exactly_the_limit(
    store: Store, other: Store
) -> None:
    takes = [(store if i % 2 else other).rate_limits.take("key_a", request()) for i in range(30)]
    results = await asyncio.gather(*takes)
    assert sum(r is not None for r in results) == 5
    final = await store.rate_limits.counters("key_a")
    assert final.requests_tat == pytest.approx(NOW + WINDOW)  # no refusal moved it


async def test_a_refused_take_changes_nothing_and_keys_are_apart(store: Store) -> None:
    limits = store.rate_limits
    for _ in range(5):
        assert await limits.take("key_a", request()) is not None
    before = await limits.counters("key_a")
    assert await limits.take("key_a", request()) is None
    assert await limits.counters("key_a") == before
    assert await limits.take("key_b", request()) is not None  # another key's own allowance
    later = await limits.take("key_a", request(now=NOW + 12))  # one 12 s step later
    assert later is not None and later.requests_tat == pytest.approx(NOW + 72)


async def test_charges_apply_past_the_limit(store: Store) -> None:
    limits = store.rate_limits
    charge = Take(now=NOW, window=WINDOW, tokens=90.0, check=False)  # 150 tokens at tpm 100
    counters = await limits.take("key_a", charge)
    assert counters is not None and counters.tokens_tat == pytest.approx(NOW + 90)
    one_token = Take(now=NOW + 29, window=WINDOW, tokens=0.6)
    assert await limits.take("key_a", one_token) is None  # in debt for 30.6 s more
    assert await limits.take("key_a", Take(now=NOW + 31, window=WINDOW, tokens=0.6))


async def test_the_budget_counts_per_period_and_refuses_what_would_overrun_it(
    store: Store,
) -> None:
    limits = store.rate_limits

    def spend(tokens: int, start: int = 100, check: bool = True) -> Take:
        return Take(
            now=NOW, window=WINDOW, period_start=start, spend=tokens, need=tokens,
            budget=50, check=check,
        )  # fmt: skip

    assert await limits.take("key_a", spend(30)) == Counters(0.0, 0.0, 100, 30)
    assert await limits.take("key_a", spend(21)) is None  # 30 + 21 > 50
    got = await limits.take("key_a", spend(40, check=False))  # a completion: charged
    assert got is not None and got.budget_used == 70
    assert await limits.take("key_a", spend(1)) is None
    renewed = await limits.take("key_a", spend(10, start=200))  # the next period
    assert renewed == Counters(0.0, 0.0, 200, 10)


async def test_a_take_without_updates_reads_the_row(store: Store) -> None:
    counters = await store.rate_limits.take("key_a", Take(now=NOW, window=WINDOW))
    assert counters == Counters()


async def test_racing_holds_from_two_replicas_stop_at_the_cap(store: Store, other: Store) -> None:
    async def hold(s: Store, owner: str) -> bool:
        try:
            await s.rate_limits.take(
                "key_a", Take(now=NOW, window=WINDOW), Hold(owner, 3, NOW - 60)
            )
        except Busy:
            return False
        return True

    tries = [hold(store, "a") if i % 2 else hold(other, "b") for i in range(12)]
    assert sum(await asyncio.gather(*tries)) == 3
    await store.rate_limits.unhold("key_a", "a", NOW)  # one ends somewhere
    assert await hold(other, "b")
    assert not await hold(store, "a")


async def test_a_refused_hold_takes_no_request_and_stale_holds_do_not_count(
    store: Store,
) -> None:
    limits = store.rate_limits
    assert await limits.take("key_a", request(), Hold("dead", 1, NOW - 60)) is not None
    with pytest.raises(Busy):
        await limits.take("key_a", request(), Hold("live", 1, NOW - 60))
    assert (await limits.counters("key_a")).requests_tat == pytest.approx(NOW + 12)  # one
    later = NOW + 61  # "dead" never renewed its heartbeat
    assert await limits.take("key_a", request(later), Hold("live", 1, later - 60)) is not None
    await limits.heartbeat("live", later + 30)  # renewed: it keeps counting
    with pytest.raises(Busy):
        await limits.take("key_a", request(later + 80), Hold("other", 1, later + 20))
