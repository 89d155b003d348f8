"""A real `hearth serve` process stopped mid-background-job, killed or shut down, then
started again on the same database: the job is failed with a reason and its text so far,
never stuck in progress, and every other stored object is intact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.postgres import PostgresServer

pytestmark = pytest.mark.timeout(400)


class Served:
    """`hearth serve` in a subprocess, on a free port, with its own data dir."""

    def __init__(self, data_dir: Path, database_url: str | None, *flags: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        env["HEARTH_DATA_DIR"] = str(data_dir)
        if database_url:
            env["HEARTH_DATABASE_URL"] = database_url
        args = ["--port", str(self.port), "--ctx-size", "4096", "--parallel", "2", *flags]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hearth", "serve", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{self.port}/v1", api_key="unused", max_retries=0
        )
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, "hearth serve exited"
            assert time.monotonic() < deadline, "hearth serve did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def stop(self, sig: signal.Signals) -> None:
        self.client.close()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the default: hearth.db in the data dir
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        yield server.create_database(f"hearth_restart_{os.getpid()}_{time.monotonic_ns()}")


def _running_job(client: openai.OpenAI) -> tuple[str, str]:
    job = client.responses.create(
        model=MODEL,
        input="Write a long story about a lighthouse keeper.",
        max_output_tokens=1500,
        temperature=0,
        background=True,
    )
    deadline = time.monotonic() + 120
    while True:
        got = client.responses.retrieve(job.id)
        assert got.status in {"queued", "in_progress"}, got.status
        if len(got.output_text) > 20:
            time.sleep(1.5)  # past several save intervals: some of the text is in the database
            return job.id, got.output_text
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _check_failed(client: openai.OpenAI, job_id: str, seen: str, crashed: bool) -> None:
    got = client.responses.retrieve(job_id)
    assert got.status == "failed", (got.status, got.output_text, seen)
    assert got.error is not None and got.error.code == "server_error"
    assert "stopped" in got.error.message
    if crashed:
        # What was saved before the crash is kept: all but the last flush interval's worth.
        kept = got.output_text
        assert kept and seen.startswith(kept[: len(seen)]), (kept, seen)
    else:
        assert got.output_text.startswith(seen)  # a clean stop saves all of it
    assert [i.type for i in client.responses.input_items.list(job_id).data] == ["message"]
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(job_id)


def test_restart_mid_background_job(tmp_path: Path, database_url: str | None) -> None:
    first = Served(tmp_path, database_url)
    try:
        client = first.client
        done = client.responses.create(model=MODEL, input="Hi", max_output_tokens=8)
        conv = client.conversations.create(
            metadata={"title": "kept"}, items=[{"role": "user", "content": "Remember me."}]
        )
        chat = client.responses.create(
            model=MODEL, input="Hello", conversation=conv.id, max_output_tokens=8
        )
        killed_id, killed_seen = _running_job(client)
    finally:
        first.stop(signal.SIGKILL)  # a crash: nothing gets to save anything

    second = Served(tmp_path, database_url)
    try:
        client = second.client
        _check_failed(client, killed_id, killed_seen, crashed=True)
        again = client.responses.retrieve(done.id)
        assert again.status == done.status and again.output_text == done.output_text
        assert client.responses.retrieve(chat.id).output_text == chat.output_text
        assert client.conversations.retrieve(conv.id).metadata == {"title": "kept"}
        items = client.conversations.items.list(conv.id, order="asc").data
        assert [i.content[0].text for i in items] == ["Remember me.", "Hello", chat.output_text]
        # A chain from a response made before the restart still works.
        follow = client.responses.create(
            model=MODEL, input="Again", previous_response_id=done.id, max_output_tokens=4
        )
        assert follow.status in {"completed", "incomplete"}
        stopped_id, stopped_seen = _running_job(client)
    finally:
        second.stop(signal.SIGTERM)  # a clean shutdown saves the job as failed itself

    third = Served(tmp_path, database_url)
    try:
        _check_failed(third.client, stopped_id, stopped_seen, crashed=False)
        _check_failed(third.client, killed_id, killed_seen, crashed=True)
    finally:
        third.stop(signal.SIGTERM)
