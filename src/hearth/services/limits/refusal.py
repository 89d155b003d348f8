"""Why a take was refused, as the error the client gets, with when to retry."""

from __future__ import annotations

from hearth.core.errors import QuotaExceeded, RateLimited
from hearth.core.principal import Principal
from hearth.services.limits.maths import WINDOW, period_bounds, wait_for
from hearth.store.limits import Counters, Take


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
