"""The limiter's maths with a fake clock, on a real (SQLite) store: GCRA bursts and refill,
refusals that consume nothing, tokens per minute, budgets per calendar period in UTC,
concurrency, and where a key stands (the headers' numbers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hearth.core.errors import QuotaExceeded, RateLimited
from hearth.core.principal import Limits, Principal
from hearth.services.limits import (
    Lease,
    Limiter,
    period_bounds,
    remaining,
    wait_for,
)
from hearth.store import Store


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()  # a Wednesday


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}")
    await s.upgrade()
    yield s
    await s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def limiter(store: Store, clock: FakeClock) -> Limiter:
    return Limiter(store.rate_limits, clock)


def key(**limits: object) -> Principal:
    return Principal(name="k", key_id="key_1", limits=Limits(**limits))  # type: ignore[arg-type]


async def admitted(limiter: Limiter, principal: Principal) -> Lease | Exception:
    try:
        lease = await limiter.admit(principal)
    except (RateLimited, QuotaExceeded) as err:
        return err
    await lease.release()
    return lease


async def test_a_burst_of_rpm_then_one_every_60_over_rpm_seconds(
    limiter: Limiter, clock: FakeClock
) -> None:
    k = key(rpm=3)
    results = [await admitted(limiter, k) for _ in range(15)]
    assert sum(isinstance(r, Lease) for r in results) == 3
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == 12
    assert all(r.type == "requests" and r.code == "rate_limit_exceeded" for r in refused)
    assert refused[0].retry_after == pytest.approx(20.0)  # the first slot back: 60 / 3 s
    clock.now += 19.9
    assert isinstance(await admitted(limiter, k), RateLimited)
    clock.now += 0.1
    assert isinstance(await admitted(limiter, k), Lease)  # exactly one came back
    assert isinstance(await admitted(limiter, k), RateLimited)
    clock.now += 60
    again = [await admitted(limiter, k) for _ in range(5)]
    assert sum(isinstance(r, Lease) for r in again) == 3


async def test_refused_attempts_consume_nothing(limiter: Limiter, clock: FakeClock) -> None:
    k = key(rpm=2)
    assert isinstance(await admitted(limiter, k), Lease)
    assert isinstance(await admitted(limiter, k), Lease)
    for _ in range(50):  # hammering while refused does not push the next slot back
        assert isinstance(await admitted(limiter, k), RateLimited)
    clock.now += 30
    assert isinstance(await admitted(limiter, k), Lease)


async def test_concurrent_admissions_in_one_process_admit_exactly_the_limit(
    limiter: Limiter,
) -> None:
    results = await asyncio.gather(*(admitted(limiter, key(rpm=4)) for _ in range(20)))
    assert sum(isinstance(r, Lease) for r in results) == 4


async def test_tokens_per_minute_admit_prompts_and_charge_completions(
    limiter: Limiter, clock: FakeClock
) -> None:
    k = key(tpm=100)
    lease = await limiter.admit(k)
    await lease.take_prompt(60)
    with pytest.raises(RateLimited) as refused:
        await lease.take_prompt(50)  # 60 + 50 > 100
    assert refused.value.type == "tokens" and refused.value.code == "rate_limit_exceeded"
    assert refused.value.retry_after == pytest.approx(6.0)  # 10 tokens at 100/min come back in 6 s
    await lease.take_prompt(40)  # the refusal took nothing: 40 still fit
    lease.charge(30)  # completions are charged past the limit: they were produced
    await lease.settle()
    await limiter.close()
    assert lease.counters.tokens_tat == pytest.approx(T0 + 130 * 0.6)
    clock.now += 18
    with pytest.raises(RateLimited):
        await lease.take_prompt(1)  # still in debt
    clock.now += 0.7
    await lease.take_prompt(1)


async def test_a_prompt_larger_than_the_tpm_is_refused_as_too_large(limiter: Limiter) -> None:
    lease = await limiter.admit(key(tpm=10))
    with pytest.raises(RateLimited, match="Request too large") as refused:
        await lease.take_prompt(11)
    assert refused.value.retry_after == 60.0


async def test_completion_charges_are_written_at_most_once_a_second(
    limiter: Limiter, store: Store, clock: FakeClock
) -> None:
    lease = await limiter.admit(key(tpm=1000, budget_tokens=10**6, budget_period="day"))
    writes = 0
    take = store.rate_limits.take

    async def counting(*args: object) -> object:
        nonlocal writes
        writes += 1
        return await take(*args)  # type: ignore[arg-type]

    store.rate_limits.take = counting  # type: ignore[method-assign]
    for _ in range(100):  # a stream of 100 tokens within half a second
        lease.charge(1)
        await asyncio.sleep(0)
        clock.now += 0.005
    await limiter.close()
    assert writes == 1  # the first token's write; the rest wait for the next second
    await lease.settle()  # the run's end writes the rest
    await limiter.close()
    assert writes == 2
    assert lease.counters.budget_used == 100  # every token, in two writes


async def test_a_budget_refuses_once_spent_until_the_next_period(
    limiter: Limiter, clock: FakeClock
) -> None:
    k = key(budget_tokens=100, budget_period="day")
    lease = await limiter.admit(k)
    await lease.take_prompt(30)
    with pytest.raises(QuotaExceeded) as short:
        await lease.take_prompt(80)  # 30 + 80 > 100: the prompt alone overruns it
    assert short.value.code == "insufficient_quota" and short.value.type == "insufficient_quota"
    lease.charge(90)  # the completion may overrun it
    await lease.settle()
    await limiter.close()
    with pytest.raises(QuotaExceeded) as spent:
        await limiter.admit(k)
    assert spent.value.retry_after == pytest.approx(12 * 3600)  # midnight UTC
    clock.now += 12 * 3600
    await limiter.admit(k)  # a new day, a new budget


def test_calendar_periods_in_utc() -> None:
    day = period_bounds(T0, "day")
    assert day == (T0 - 12 * 3600, T0 + 12 * 3600)
    start, end = period_bounds(T0, "week")
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 11, 30, tzinfo=UTC)  # Monday
    assert end - start == 7 * 86400
    start, end = period_bounds(T0, "month")
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2027, 1, 1, tzinfo=UTC)


def test_gcra_standing() -> None:
    # rpm 6: one request is 10 s. A TAT 25 s ahead leaves room for 3 of 6.
    assert remaining(T0 + 25, T0, 6) == 3
    assert remaining(T0 - 100, T0, 6) == 6  # at rest: the whole burst
    assert remaining(T0 + 70, T0, 6) == 0  # in debt
    assert wait_for(T0 + 55, T0, 1, 6) == pytest.approx(5.0)
    assert wait_for(T0, T0, 1, 6) == 0.0


async def test_max_concurrent_is_held_until_release(limiter: Limiter, store: Store) -> None:
    k = key(max_concurrent=2, rpm=100)
    first, second = await limiter.admit(k), await limiter.admit(k)
    with pytest.raises(RateLimited, match="concurrent") as refused:
        await limiter.admit(k)
    assert refused.value.retry_after == 1.0
    await first.release()
    await first.release()  # once only
    third = await limiter.admit(k)
    with pytest.raises(RateLimited):
        await limiter.admit(k)
    # The refused ones took no request of the 100 a minute: 3 were admitted.
    assert (await store.rate_limits.counters("key_1")).requests_tat == pytest.approx(T0 + 1.8)
    await second.release()
    await third.release()
    await limiter.close()


async def test_a_crashed_replicas_holds_stop_counting(store: Store, clock: FakeClock) -> None:
    k = key(max_concurrent=1)
    crashed = Limiter(store.rate_limits, clock)
    await crashed.admit(k)  # never released: its process died
    await crashed.close()  # (and so it renews nothing)
    survivor = Limiter(store.rate_limits, clock)
    with pytest.raises(RateLimited):
        await survivor.admit(k)
    clock.now += 61  # its heartbeat is stale
    lease = await survivor.admit(k)
    await lease.release()
    await survivor.close()


async def test_standings_report_the_latest_counters(limiter: Limiter, clock: FakeClock) -> None:
    k = key(rpm=6, tpm=600)
    lease = await limiter.admit(k)
    await lease.take_prompt(100)
    requests, tokens = lease.standings(clock.now)
    assert (requests.kind, requests.limit, requests.remaining) == ("requests", 6, 5)
    assert requests.reset == pytest.approx(10.0)
    assert (tokens.kind, tokens.limit, tokens.remaining) == ("tokens", 600, 500)
    assert tokens.reset == pytest.approx(10.0)
