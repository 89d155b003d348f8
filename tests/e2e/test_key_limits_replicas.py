"""Two replicas on one PostgreSQL enforce a key's limits together: 2×N concurrent requests
split between them against rpm N admit exactly N; a key's concurrent requests count on
both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings
from tests.e2e.key_limit_server import NEVER_END, add_keys
from tests.postgres import PostgresServer

pytestmark = pytest.mark.timeout(300)

N = 4


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[tuple[list[LiveServer], dict[str, str]]]:
    url = postgres.create_database(f"hearth_limits_{time.monotonic_ns()}")
    keys = add_keys(url, {"shared": {"rpm": N}, "one_at_a_time": {"max_concurrent": 1}})
    servers = []
    try:
        for name in ("a", "b"):
            settings = make_settings(tmp_path_factory.mktemp(name), database_url=url, parallel=2)
            servers.append(LiveServer(settings).start())
        yield servers, keys
    finally:
        for server in servers:
            server.stop()


def clients_of(servers: list[LiveServer], key: str) -> list[openai.OpenAI]:
    return [openai.OpenAI(base_url=f"{s.url}/v1", api_key=key, max_retries=0) for s in servers]


def test_two_replicas_admit_exactly_rpm_between_them(
    replicas: tuple[list[LiveServer], dict[str, str]],
) -> None:
    servers, keys = replicas
    clients = clients_of(servers, keys["shared"])

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


def test_a_stream_on_one_replica_holds_the_keys_only_slot_on_the_other(
    replicas: tuple[list[LiveServer], dict[str, str]],
) -> None:
    servers, keys = replicas
    a, b = clients_of(servers, keys["one_at_a_time"])
    with a, b:
        stream = a.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Tell a long story."}],
            max_tokens=300, logit_bias=NEVER_END, stream=True,
        )  # fmt: skip
        next(iter(stream))
        with pytest.raises(openai.RateLimitError, match="concurrent"):
            b.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        for _ in stream:  # to its end: the slot is free before the client sees the end
            pass
        b.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
