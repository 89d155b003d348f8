"""One admitted request of a limited key (`Lease`), and the contextvar that carries it
to the code the request runs (services/generation.start_reply, services/embeddings)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from hearth.core.errors import RateLimited
from hearth.core.principal import Principal
from hearth.services.jobs.owners import STALE_AFTER
from hearth.services.limits.maths import (
    WINDOW,
    Standing,
    budgeted,
    period_bounds,
    remaining,
    reset_after,
    step,
)
from hearth.services.limits.refusal import refusal
from hearth.store.limits import Busy, Counters, Hold, Take

if TYPE_CHECKING:
    from hearth.services.limits.limiter import Limiter

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0  # seconds between writes of a streaming run's completion tokens
CONCURRENCY_RETRY = 1.0  # Retry-After for a key at its concurrent requests


def limited(principal: Principal) -> bool:
    """Whether requests of this principal go through the limiter (a cheap check)."""
    return principal.key_id is not None and principal.limits.any


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
        return self.principal.limits.tpm is not None or budgeted(self.principal.limits)

    def take(self, now: float, *, requests: int = 0, tokens: int = 0, need: int = 0) -> Take:
        """The update for `requests` requests and `tokens` tokens, checked against the
        key's limits (`need`: tokens the budget must have left)."""
        limits = self.principal.limits
        budget = budgeted(limits)
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
        if hold is None and limits.rpm is None and limits.tpm is None and not budgeted(limits):
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
            limiter.count_hold(self.key_id, +1)

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
            self._writing = self.limiter.write_charges(self)

    async def settle(self) -> None:
        """A run ended: write what it charged now, not at the next second, and wait for
        it, so that the key's next request sees it. The write is shielded: a cancelled
        caller (a client that left) does not lose it."""
        while self._pending or self._writing is not None:
            self._urgent = True
            if self._writing is None:
                self._writing = self.limiter.write_charges(self)
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
                    counters = await self.limiter.store.take(self.key_id, take)
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
            await asyncio.shield(self.limiter.spawn(self.limiter.free(self.key_id)))

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
