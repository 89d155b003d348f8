"""Two replicas on one PostgreSQL enforce a key's limits together: 2×N concurrent requests
split between them against rpm N admit exactly N."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings
from tests.e2e.key_limit_server import add_keys
from tests.postgres import PostgresServer

pytestmark = pytest.mark.timeout(300)

N = 4


@pytest.fixture
def replicas(tmp_path: Path, postgres: PostgresServer) -> Iterator[tuple[list[LiveServer], str]]:
    url = postgres.create_database(f"hearth_limits_{time.monotonic_ns()}")
    key = add_keys(url, {"shared": {"rpm": N}})["shared"]
    servers = []
    try:
        for name in ("a", "b"):
            settings = make_settings(tmp_path / name, database_url=url, parallel=2)
            servers.append(LiveServer(settings).start())
        yield servers, key
    finally:
        for server in servers:
            server.stop()


def test_two_replicas_admit_exactly_rpm_between_them(
    replicas: tuple[list[LiveServer], str],
) -> None:
    servers, key = replicas
    clients = [openai.OpenAI(base_url=f"{s.url}/v1", api_key=key, max_retries=0) for s in servers]

    def one(i: int) -> bool:
        try:
            clients[i % 2].chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        except openai.RateLimitError as err:
            assert err.response.headers["retry-after"]
            return False
        return True

    try:
        with ThreadPoolExecutor(2 * N) as pool:
            passed = list(pool.map(one, range(2 * N)))
    finally:
        for c in clients:
            c.close()
    # Each replica got N requests: on its own it would have let all of them through.
    assert sum(passed) == N
