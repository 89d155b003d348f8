"""The arithmetic of the limits: GCRA for the per-minute ones, calendar periods in UTC
for budgets. Pure functions of a time and the counters; the database applies the same
rules atomically (store/limits.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hearth.core.principal import BudgetPeriod, Limits

WINDOW = 60.0  # the limits are per minute


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


def budgeted(limits: Limits) -> bool:
    return limits.budget_tokens is not None and limits.budget_period is not None


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a key stands on one per-minute limit (OpenAI's x-ratelimit-* headers)."""

    kind: str  # "requests" | "tokens"
    limit: int
    remaining: int
    reset: float  # seconds until it is whole again
