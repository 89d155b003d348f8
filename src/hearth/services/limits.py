"""Per-key limits: requests and tokens per minute, concurrent requests, a token budget
per period. Only keys from the database have them (`Principal.key_id`); a key without
limits never reaches this module's database work.

- Requests and tokens per minute are GCRA: one theoretical arrival time (TAT) per key
  and kind, moved by cost × 60 s / limit per take; a take is allowed while the TAT stays
  within 60 s of now. So the burst is the per-minute limit (5N requests at once against
  rpm N admit exactly N) and the allowance refills smoothly, one request every 60/N s.
- The budget counts prompt and completion tokens per calendar period in UTC (a day; a
  week from Monday 00:00; a month from the 1st).
- These counters live in the database and every check is one atomic conditional update
  (store/limits.py), so replicas sharing PostgreSQL enforce them together; a refused
  attempt consumes nothing.
- Concurrent requests are counted per process: with R replicas a key may run up to
  R × max_concurrent at once (the documented bound; a crashed replica's requests stop
  counting with it, as nothing of them is stored).

A request of a limited key is admitted (requests, concurrency, budget) into a `Lease`,
which the request's task carries in a contextvar (`current_lease`). Where its prompt is
known (services/generation.start_reply) the lease takes the prompt's tokens against
tokens per minute and the budget; its completion tokens are charged as they stream, in
memory, written at most once a second and at the run's end (FLUSH_EVERY).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hearth.core.errors import QuotaExceeded, RateLimited
from hearth.core.principal import BudgetPeriod, Limits, Principal
from hearth.store.limits import Counters, RateLimits, Take

log = logging.getLogger(__name__)

WINDOW = 60.0  # the limits are per minute
FLUSH_EVERY = 1.0  # seconds between writes of a streaming run's completion tokens
CONCURRENCY_RETRY = 1.0  # Retry-After for a key at its concurrent requests


def limited(principal: Principal) -> bool:
    """Whether requests of this principal go through the limiter (a cheap check)."""
    return principal.key_id is not None and principal.limits.any


# ---- the maths ------------------------------------------------------------------------------


def step(limit: int) -> float:
    """GCRA's emission interval: the seconds one unit of a per-minute limit stands for."""
    return WINDOW / limit


def wait_for(tat: float, now: float, cost: int, limit: int) -> float:
    """Seconds until a take of `cost` passes (0: now); it never does when cost > limit."""
    return max(0.0, max(tat, now) + cost * step(limit) - WINDOW - now)


def remaining(tat: float, now: float, limit: int) -> int:
    """Units a burst could take now."""
    left = (now + WINDOW - max(tat, now)) / step(limit)
    return max(0, min(limit, math.floor(left + 1e-9)))


def reset_after(tat: float, now: float) -> float:
    """Seconds until the allowance is whole again."""
    return max(0.0, tat - now)


def period_bounds(now: float, period: BudgetPeriod) -> tuple[int, int]:
    """(start, end) of the calendar period in UTC holding `now`, as unix seconds."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return int(start.timestamp()), int(end.timestamp())


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a key stands on one per-minute limit (OpenAI's x-ratelimit-* headers)."""

    kind: str  # "requests" | "tokens"
    limit: int
    remaining: int
    reset: float  # seconds until it is whole again


# ---- admission and charging --------------------------------------------------------------


class Limiter:
    """The limits of every key, for one server process."""

    def __init__(self, store: RateLimits, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._running: dict[str, int] = {}  # key id → its requests running in this process
        self._writes: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs

    async def admit(self, principal: Principal) -> Lease:
        """Admit one request of a limited key, or raise RateLimited / QuotaExceeded."""
        lease = Lease(self, principal)
        await lease.admit()
        return lease

    def _write(self, lease: Lease) -> asyncio.Task[None]:
        task = asyncio.create_task(lease.flush())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return task

    def _ended(self, key_id: str) -> None:
        left = self._running.get(key_id, 0) - 1
        if left > 0:
            self._running[key_id] = left
        else:
            self._running.pop(key_id, None)

    async def close(self) -> None:
        """Wait for the charges still being written (at shutdown, before the store closes)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


def _budgeted(limits: Limits) -> bool:
    return limits.budget_tokens is not None and limits.budget_period is not None


def refusal(
    principal: Principal, counters: Counters, take: Take, requests: int, tokens: int
) -> RateLimited | QuotaExceeded:
    """Why `take` (of `requests` requests or `tokens` tokens) was refused, with when to
    retry."""
    limits, now, name = principal.limits, take.now, principal.name
    if take.budget is not None and limits.budget_period is not None:
        assert take.period_start is not None
        if counters.used_in(take.period_start) + take.need > take.budget:
            _, end = period_bounds(now, limits.budget_period)
            return QuotaExceeded(
                f"Key '{name}' has used its budget of {take.budget} tokens for this "
                f"{limits.budget_period}; it renews at the start of the next one (UTC).",
                retry_after=max(1.0, end - now),
            )
    if requests and limits.rpm is not None:
        wait = wait_for(counters.requests_tat, now, requests, limits.rpm)
        return RateLimited(
            f"Rate limit reached for key '{name}' on requests per min (RPM): "
            f"Limit {limits.rpm}. Please try again in {wait:.1f}s.",
            retry_after=max(wait, 0.001),  # > 0 always: it was refused a moment ago
        )
    tpm = limits.tpm
    if not tokens or tpm is None:  # refused, yet no longer so by the counters read after
        return RateLimited(
            f"Rate limit reached for key '{name}'. Please try again in 1s.", retry_after=1.0
        )
    if tokens > tpm:
        return RateLimited(
            f"Request too large for key '{name}' on tokens per min (TPM): Limit {tpm}, "
            f"Requested {tokens}. The input must be shorter to run.",
            retry_after=WINDOW,
            tokens=True,
        )
    wait = wait_for(counters.tokens_tat, now, tokens, tpm)
    return RateLimited(
        f"Rate limit reached for key '{name}' on tokens per min (TPM): Limit {tpm}, "
        f"Requested {tokens}. Please try again in {wait:.1f}s.",
        retry_after=max(wait, 0.001),
        tokens=True,
    )


class Lease:
    """One admitted request of a limited key: its concurrency slot, the counters as the
    last write left them (for the response's headers), and the completion tokens not
    yet written."""

    def __init__(self, limiter: Limiter, principal: Principal) -> None:
        self.limiter = limiter
        self.principal = principal
        self.counters = Counters()
        self._released = False
        self._pending = 0  # completion tokens charged, not yet written
        self._written_at = -math.inf
        self._writing: asyncio.Task[None] | None = None
        self._urgent = False  # a run ended: write what is pending now

    @property
    def meters_tokens(self) -> bool:
        return self.principal.limits.tpm is not None or _budgeted(self.principal.limits)

    def take(self, now: float, *, requests: int = 0, tokens: int = 0, need: int = 0) -> Take:
        """The update for `requests` requests and `tokens` tokens, checked against the
        key's limits (`need`: tokens the budget must have left)."""
        limits = self.principal.limits
        budget = _budgeted(limits)
        return Take(
            now=now,
            window=WINDOW,
            requests=requests * step(limits.rpm) if requests and limits.rpm else None,
            tokens=tokens * step(limits.tpm) if tokens and limits.tpm else None,
            period_start=period_bounds(now, limits.budget_period)[0]  # type: ignore[arg-type]
            if budget
            else None,
            spend=tokens if budget else 0,
            need=need,
            budget=limits.budget_tokens if budget else None,
        )

    async def admit(self) -> None:
        """Take one request against requests per minute, a concurrency slot (held until
        `release`) and a token of budget left, or raise RateLimited / QuotaExceeded. A
        refusal leaves the counters it saw in `counters` (for the response's headers)."""
        key_id, limits = self.principal.key_id, self.principal.limits
        assert key_id is not None
        running = self.limiter._running
        cap = limits.max_concurrent
        if cap is not None and running.get(key_id, 0) >= cap:
            self._released = True  # nothing was held
            if limits.rpm is not None or limits.tpm is not None:
                self.counters = await self.limiter.store.counters(key_id)
            raise RateLimited(
                f"Too many concurrent requests for key '{self.principal.name}': limit {cap}. "
                "Retry when one of them has finished.",
                retry_after=CONCURRENCY_RETRY,
            )
        running[key_id] = running.get(key_id, 0) + 1
        try:
            if limits.rpm is not None or limits.tpm is not None or _budgeted(limits):
                now = self.limiter.clock()
                take = self.take(now, requests=1, need=1)
                await self._take(take, requests=1)
        except BaseException:
            self.release()
            raise

    async def _take(self, take: Take, *, requests: int = 0, tokens: int = 0) -> None:
        key_id = self.principal.key_id
        assert key_id is not None
        store = self.limiter.store
        counters = await store.take(key_id, take)
        if counters is None:
            self.counters = await store.counters(key_id)
            raise refusal(self.principal, self.counters, take, requests, tokens)
        self.counters = counters

    async def take_prompt(self, tokens: int) -> None:
        """Admit a prompt of `tokens` tokens against tokens per minute and the budget, or
        raise (nothing is taken then)."""
        if not self.meters_tokens or tokens <= 0:
            return
        take = self.take(self.limiter.clock(), tokens=tokens, need=tokens)
        await self._take(take, tokens=tokens)

    def charge(self, tokens: int) -> None:
        """Completion tokens produced: counted in memory, written within FLUSH_EVERY."""
        if tokens <= 0 or not self.meters_tokens:
            return
        self._pending += tokens
        if self._writing is None and self.limiter.clock() - self._written_at >= FLUSH_EVERY:
            self._writing = self.limiter._write(self)

    async def settle(self) -> None:
        """A run ended: write what it charged now, not at the next second, and wait for
        it, so that the key's next request sees it. The write is shielded: a cancelled
        caller (a client that left) does not lose it."""
        while self._pending or self._writing is not None:
            self._urgent = True
            if self._writing is None:
                self._writing = self.limiter._write(self)
            await asyncio.shield(self._writing)

    async def flush(self) -> None:
        try:
            while self._pending:
                tokens, self._pending = self._pending, 0
                now = self.limiter.clock()
                self._written_at = now
                # Tokens already used: charged unconditionally, even past a limit.
                take = replace(self.take(now, tokens=tokens), check=False)
                try:
                    assert self.principal.key_id is not None
                    counters = await self.limiter.store.take(self.principal.key_id, take)
                except Exception as exc:  # a lost charge must not fail the reply
                    log.warning(
                        "could not charge %d tokens to key %s: %s", tokens, self.principal.name, exc
                    )
                    continue
                if counters is not None:
                    self.counters = counters
                if not self._urgent and self.limiter.clock() - self._written_at < FLUSH_EVERY:
                    break  # the next charge after the second writes the rest
        finally:
            self._writing = None
            self._urgent = False

    def release(self) -> None:
        """The request ended: its concurrency slot is free (once)."""
        if not self._released:
            self._released = True
            assert self.principal.key_id is not None
            self.limiter._ended(self.principal.key_id)

    def standings(self, now: float) -> list[Standing]:
        """The per-minute limits as the last write left them."""
        limits, counters = self.principal.limits, self.counters
        kinds = (
            ("requests", limits.rpm, counters.requests_tat),
            ("tokens", limits.tpm, counters.tokens_tat),
        )
        return [
            Standing(kind, limit, remaining(tat, now, limit), reset_after(tat, now))
            for kind, limit, tat in kinds
            if limit is not None
        ]


# ---- the request's lease ------------------------------------------------------------------

_lease: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("hearth_lease", default=None)


def current_lease() -> Lease | None:
    """The lease of the request this task works for (None: a key without limits)."""
    return _lease.get()


@contextlib.contextmanager
def holding(lease: Lease | None) -> Iterator[None]:
    """Make `lease` the current one within the block (and tasks started in it)."""
    token = _lease.set(lease)
    try:
        yield
    finally:
        _lease.reset(token)
