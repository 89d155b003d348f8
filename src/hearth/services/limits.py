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
- Concurrent requests are held in the database too, one row per key and process; a
  process renews its rows' heartbeat while it holds any, so a crashed replica's
  requests stop counting within STALE_AFTER (60 s).

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
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hearth.core.errors import QuotaExceeded, RateLimited
from hearth.core.principal import BudgetPeriod, Limits, Principal
from hearth.services.jobs.owners import HEARTBEAT_EVERY, STALE_AFTER, this_process
from hearth.store.limits import Busy, Counters, Hold, RateLimits, Take

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
    """The limits of every key, for one server process. `owner` names the process in
    the concurrency holds, as the job tables name it (services/jobs/owners.py); while
    it holds any, it renews their heartbeat every HEARTBEAT_EVERY seconds, so the holds
    of a process that died stop counting within STALE_AFTER."""

    def __init__(self, store: RateLimits, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.owner = this_process()
        self._holds: dict[str, int] = {}  # key id → this process's holds
        self._owed: dict[str, int] = {}  # releases whose write failed: retried
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        self._beating: asyncio.Task[None] | None = None

    async def admit(self, principal: Principal) -> Lease:
        """Admit one request of a limited key, or raise RateLimited / QuotaExceeded."""
        lease = Lease(self, principal)
        await lease.admit()
        return lease

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _write(self, lease: Lease) -> asyncio.Task[None]:
        return self._spawn(lease.flush())

    def _held(self, key_id: str, change: int) -> None:
        held = self._holds.get(key_id, 0) + change
        if held > 0:
            self._holds[key_id] = held
        else:
            self._holds.pop(key_id, None)
        if self._holds and self._beating is None:
            self._beating = asyncio.create_task(self._beat())

    async def _unhold(self, key_id: str) -> None:
        try:
            await self.store.unhold(key_id, self.owner, self.clock())
        except Exception as exc:  # retried by the heartbeat; the slot stays held till then
            log.warning("could not release a concurrency slot of key %s: %s", key_id, exc)
            self._owed[key_id] = self._owed.get(key_id, 0) + 1
            return
        self._held(key_id, -1)

    async def _beat(self) -> None:
        try:
            while self._holds:
                await asyncio.sleep(HEARTBEAT_EVERY)
                for key_id, owed in list(self._owed.items()):
                    self._owed.pop(key_id)
                    for _ in range(owed):
                        await self._unhold(key_id)
                try:
                    await self.store.heartbeat(self.owner, self.clock())
                except Exception as exc:  # the next beat tries again
                    log.warning("could not renew the concurrency holds: %s", exc)
        finally:
            self._beating = None

    async def close(self) -> None:
        """Wait for the writes still running (at shutdown, before the store closes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)


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
        self._holding = False  # a concurrency slot, in the database
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
        """Take one request against requests per minute, a token of budget left and a
        concurrency slot (held until `release`), or raise RateLimited / QuotaExceeded. A
        refusal leaves the counters it saw in `counters` (for the response's headers)."""
        limits, limiter = self.principal.limits, self.limiter
        hold = None
        if limits.max_concurrent is not None:
            live_after = limiter.clock() - STALE_AFTER
            hold = Hold(limiter.owner, limits.max_concurrent, live_after)
        if hold is None and limits.rpm is None and limits.tpm is None and not _budgeted(limits):
            return
        take = self.take(limiter.clock(), requests=1, need=1)
        try:
            await self._take(take, requests=1, hold=hold)
        except Busy:
            self.counters = await limiter.store.counters(self.key_id)
            raise RateLimited(
                f"Too many concurrent requests for key '{self.principal.name}': limit "
                f"{limits.max_concurrent}. Retry when one of them has finished.",
                retry_after=CONCURRENCY_RETRY,
            ) from None
        if hold is not None:
            self._holding = True
            limiter._held(self.key_id, +1)

    @property
    def key_id(self) -> str:
        assert self.principal.key_id is not None
        return self.principal.key_id

    async def _take(
        self, take: Take, *, requests: int = 0, tokens: int = 0, hold: Hold | None = None
    ) -> None:
        key_id = self.key_id
        store = self.limiter.store
        counters = await store.take(key_id, take, hold)
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

    async def release(self) -> None:
        """The request ended: its concurrency slot is free (once). The write is shielded:
        a cancelled caller (a client that left) does not keep the slot taken."""
        if self._holding:
            self._holding = False
            await asyncio.shield(self.limiter._spawn(self.limiter._unhold(self.key_id)))

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
