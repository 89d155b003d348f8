"""engine/upstream/pool.py: which member takes a request, and how one goes out and back."""

from __future__ import annotations

import asyncio
import socket

from hearth.core.model_spec import UpstreamMember
from hearth.engine.upstream.http import Http
from hearth.engine.upstream.pool import MAX_BACKOFF, Pool
from tests.e2e.misbehaving import Misbehaving


def _pool(*weights: float, url: str = "http://127.0.0.1:9/v1") -> Pool:
    members = [UpstreamMember(url=f"{url}?{i}", weight=w) for i, w in enumerate(weights)]
    return Pool(members, Http(connect_timeout=1.0), interval=5.0, check_timeout=1.0)


def test_least_outstanding_weighted_and_never_one_tried() -> None:
    pool = _pool(1, 2)
    a, b = pool.members
    picks = []
    for _ in range(6):
        member = pool.pick()
        assert member is not None
        member.requests += 1
        picks.append(member is a)
    assert picks.count(True) == 2  # b has twice the weight: twice the requests
    a.in_flight, b.in_flight = 1, 3  # 1 per weight against 1.5
    assert pool.pick() is a and pool.pick([a]) is b and pool.pick([a, b]) is None


def test_a_member_goes_down_and_its_checks_back_off() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    pool = _pool(1, url=dead)
    [member] = pool.members

    async def run() -> list[int]:
        pool.failed(member, "connection refused", down=True)
        assert pool.pick() is None and 1.0 <= pool.retry_after() <= 5.0
        backoffs = []
        for _ in range(7):
            assert not await pool.check(member)
            backoffs.append(member.backoff)
        await pool.client.aclose()
        return backoffs

    assert asyncio.run(run()) == [2, 4, 8, 16, 32, MAX_BACKOFF, MAX_BACKOFF]
    assert member.errors == 1 and member.last_error == "health check: connection refused"
    assert pool.retry_after() > 5.0 * 16


def test_one_check_that_passes_brings_a_member_back() -> None:
    server = Misbehaving("fails")  # its /health answers 200
    pool = Pool(
        [UpstreamMember(url=server.url)], Http(connect_timeout=1.0), interval=5, check_timeout=1
    )
    [member] = pool.members

    async def run() -> bool:
        pool.failed(member, "HTTP 500", down=True)
        member.backoff = 8
        try:
            return await pool.check(member)
        finally:
            await pool.client.aclose()

    try:
        assert asyncio.run(run())
    finally:
        server.stop()
    assert member.healthy and member.backoff == 1 and pool.pick() is member
