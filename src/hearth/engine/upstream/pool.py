"""The members of an upstream pool: which one takes the next request, and which are up.

Balancing is least-outstanding-requests, weighted: the healthy member with the fewest
requests in flight per unit of weight, ties going to the one that has served the fewest
(per weight), so that sequential requests alternate. A member is taken out when a request
cannot reach it or a health check fails, and checked again after an interval that doubles
with each failed check (exponential backoff, capped); one check that passes brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from hearth.core.model_spec import UpstreamMember
from hearth.engine.types import MemberStatus
from hearth.engine.upstream.http import Http, TransportError, describe

log = logging.getLogger(__name__)

MAX_BACKOFF = 32  # health intervals between two checks of a member that stays down


@dataclass(eq=False)
class Member:
    url: str  # the OpenAI base URL, …/v1
    api_key: str | None = None
    weight: float = 1.0
    healthy: bool = True
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    backoff: int = 1  # health intervals until the next check of a member that is down
    next_check: float = 0.0  # monotonic time
    has_tokenize: bool | None = None  # whether its /tokenize answers (None: not yet known)

    @classmethod
    def of(cls, spec: UpstreamMember) -> Member:
        return cls(spec.url, spec.api_key, spec.weight)

    @property
    def root(self) -> str:
        """The server's root, where /health and /tokenize live (next to /v1)."""
        return self.url.removesuffix("/v1")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def state(self) -> str:
        return "up" if self.healthy else "down"

    def status(self) -> MemberStatus:
        return MemberStatus(
            self.url, self.state, self.in_flight, self.requests, self.errors, self.last_error
        )


class Pool:
    def __init__(
        self,
        members: Iterable[UpstreamMember],
        client: Http,
        *,
        interval: float,
        check_timeout: float,
    ) -> None:
        self.members = [Member.of(m) for m in members]
        self.client = client
        self.interval = interval
        self.check_timeout = check_timeout
        self._task: asyncio.Task[None] | None = None

    def pick(self, tried: Iterable[Member] = ()) -> Member | None:
        """The healthy member to send the next request to, never one of `tried`."""
        skip = set(map(id, tried))
        ready = [m for m in self.members if m.healthy and id(m) not in skip]
        if not ready:
            return None
        return min(ready, key=lambda m: (m.in_flight / m.weight, m.requests / m.weight))

    def retry_after(self) -> float:
        """Seconds until the next check of a member that is down may bring it back."""
        now = time.monotonic()
        waits = [m.next_check - now for m in self.members if not m.healthy]
        return max(1.0, min(waits, default=self.interval))

    def failed(self, member: Member, reason: str, *, down: bool) -> None:
        """A request to `member` failed; with `down` (unreachable, hung) it is taken out."""
        member.errors += 1
        member.last_error = reason
        if down and member.healthy:
            log.warning("upstream member %s is down: %s", member.url, reason)
            member.healthy = False
            member.backoff = 1
            member.next_check = time.monotonic() + self.interval

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="upstream-health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            due = [m for m in self.members if m.healthy or m.next_check <= now]
            results = await asyncio.gather(*(self.check(m) for m in due), return_exceptions=True)
            for result in results:  # a check that broke must not end the checking
                if isinstance(result, Exception):
                    log.error("a health check of the upstream pool failed: %r", result)

    async def check(self, member: Member) -> bool:
        """One health check: the server's /health, else (none there) its /v1/models."""
        problem = await self._probe(member)
        if problem is None:
            if not member.healthy:
                log.warning("upstream member %s is back", member.url)
            member.healthy = True
            member.backoff = 1
            return True
        if member.healthy:
            self.failed(member, f"health check: {problem}", down=True)
        else:
            member.last_error = f"health check: {problem}"
            member.backoff = min(member.backoff * 2, MAX_BACKOFF)
            member.next_check = time.monotonic() + member.backoff * self.interval
        return False

    async def _probe(self, member: Member) -> str | None:
        try:
            status = await self._get(member, f"{member.root}/health")
            if status == 404:
                status = await self._get(member, f"{member.url}/models")
        except (TimeoutError, TransportError) as exc:
            return describe(exc)
        if status >= 400:
            return f"HTTP {status}"
        return None

    async def _get(self, member: Member, url: str) -> int:
        status, _ = await self.client.get(url, member.headers, within=self.check_timeout)
        return status


async def check_members(members: Iterable[UpstreamMember], wait: float) -> list[Member]:
    """Each member after one health check: for `hearth models`, outside a server."""
    client = Http(connect_timeout=wait)
    try:
        pool = Pool(members, client, interval=1.0, check_timeout=wait)
        await asyncio.gather(*(pool.check(m) for m in pool.members))
        return pool.members
    finally:
        await client.aclose()
