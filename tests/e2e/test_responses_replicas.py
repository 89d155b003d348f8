"""Two servers on one database, as replicas behind a load balancer: a background job run
by one is polled, resumed and cancelled through the other."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings
from tests.postgres import PostgresServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], openai.OpenAI]]:
    """Starts servers (named by their data dir) that share one database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"hearth_replicas_{time.monotonic_ns()}")
    started: list[tuple[LiveServer, openai.OpenAI]] = []

    def start(name: str) -> openai.OpenAI:
        settings = make_settings(tmp_path / name, database_url=url, parallel=2)
        live = LiveServer(settings).start()
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0)
        started.append((live, client))
        return client

    yield start
    for live, client in started:
        client.close()
        live.stop()


def test_a_job_polled_resumed_and_cancelled_through_another_server(
    replicas: Callable[[str], openai.OpenAI],
) -> None:
    runner = replicas("a")
    job = runner.responses.create(
        model=MODEL, input="Write a long story about a river.", max_output_tokens=1000,
        temperature=0, background=True,
    )  # fmt: skip
    # A server starting meanwhile fails the jobs of dead servers only, never a live one's.
    other = replicas("b")
    assert other.responses.retrieve(job.id).status in {"queued", "in_progress"}
    lengths = []
    deadline = time.monotonic() + 120
    while len(lengths) < 3 or lengths[-1] == lengths[0]:
        got = other.responses.retrieve(job.id)  # what the runner has saved so far
        assert got.status in {"queued", "in_progress"}
        lengths.append(len(got.output_text))
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert lengths == sorted(lengths)
    with other.responses.retrieve(job.id, stream=True, starting_after=2) as stream:
        first = next(iter(stream))
    assert first.sequence_number == 3

    cancelled = other.responses.cancel(job.id)
    assert cancelled.status == "cancelled"
    deadline = time.monotonic() + 10
    while runner.responses.retrieve(job.id).status != "cancelled":
        assert time.monotonic() < deadline, "the runner went on after the cancel"
        time.sleep(0.1)
    time.sleep(1)  # it writes nothing more once it has seen the cancel
    final = other.responses.retrieve(job.id)
    assert final.status == "cancelled" and final.output_text  # the text saved is kept
    assert len(final.output_text) >= lengths[-1]
    assert runner.responses.retrieve(job.id).output_text == final.output_text
