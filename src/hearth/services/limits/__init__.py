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

Also to know: a request admitted by rpm but refused on its prompt's tokens counted as a
request; completions are charged even past a limit (they were produced), so a key can
overrun its tpm or budget by one reply per request in flight, and then waits out the
debt. Replicas compare their own clocks' times: keep them in sync (NTP).

maths.py: GCRA and periods; refusal.py: the error a refusal is; lease.py: one request's
admission and charges; limiter.py: the process's side (its holds' heartbeat).
"""

from hearth.services.limits.lease import (
    FLUSH_EVERY,
    Lease,
    current_lease,
    holding,
    limited,
)
from hearth.services.limits.limiter import Limiter
from hearth.services.limits.maths import (
    WINDOW,
    Standing,
    period_bounds,
    remaining,
    reset_after,
    wait_for,
)

__all__ = [
    "FLUSH_EVERY",
    "WINDOW",
    "Lease",
    "Limiter",
    "Standing",
    "current_lease",
    "holding",
    "limited",
    "period_bounds",
    "remaining",
    "reset_after",
    "wait_for",
]
