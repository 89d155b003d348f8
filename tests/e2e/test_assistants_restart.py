"""A real `hearth serve` process stopped mid-run, killed or shut down, then started again
on the same database: the run is failed with last_error, never left in progress, and the
assistant, the thread and its messages are intact and usable."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import MODEL
from tests.e2e.test_assistants import WEATHER
from tests.e2e.test_responses_restart import Served, database_url  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]


def _running(client: openai.OpenAI, assistant_id: str) -> tuple[Any, str]:
    """A thread whose run is in progress with some of its reply saved."""
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        metadata={"kept": "yes"},
    )
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant_id, max_completion_tokens=1500
    )
    deadline = time.monotonic() + 120
    while True:
        got = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert got.status in {"queued", "in_progress"}, got.status
        reply = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        if reply and len(reply[0].content[0].text.value) > 20:
            return got, reply[0].content[0].text.value
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _check_failed(client: openai.OpenAI, run: Any) -> None:
    beta = client.beta
    got = beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
    assert got.status == "failed" and got.failed_at
    assert got.last_error is not None and got.last_error.code == "server_error"
    assert "stopped" in got.last_error.message
    thread = beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"kept": "yes"}
    messages = beta.threads.messages.list(run.thread_id, order="asc").data
    assert messages[0].content[0].text.value.startswith("Write a long story")
    with pytest.raises(openai.BadRequestError):
        beta.threads.runs.cancel(run.id, thread_id=run.thread_id)


def test_restart_mid_run(tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    first = Served(tmp_path, database_url)
    try:
        client = first.client
        assistant = client.beta.assistants.create(
            model=MODEL, instructions="Be brief.", temperature=0, metadata={"a": "b"}
        )
        done = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "Hi"}]},
            max_completion_tokens=8,
        )
        waiting = client.beta.threads.runs.create_and_poll(
            thread_id=client.beta.threads.create(
                messages=[{"role": "user", "content": "Weather in Oslo?"}]
            ).id,
            assistant_id=assistant.id,
            tools=[WEATHER],
            tool_choice="required",
            parallel_tool_calls=False,
            max_completion_tokens=200,
        )
        assert waiting.status == "requires_action"
        killed, _ = _running(client, assistant.id)
    finally:
        first.stop(signal.SIGKILL)  # a crash: nothing gets to save anything

    second = Served(tmp_path, database_url)
    try:
        client = second.client
        _check_failed(client, killed)
        assert client.beta.assistants.retrieve(assistant.id).metadata == {"a": "b"}
        again = client.beta.threads.runs.retrieve(done.id, thread_id=done.thread_id)
        assert again.status == done.status and again.usage == done.usage
        # A run that was waiting for tool outputs waits still, and goes on here.
        paused = client.beta.threads.runs.retrieve(waiting.id, thread_id=waiting.thread_id)
        assert paused.status == "requires_action"
        assert paused.required_action == waiting.required_action
        calls = paused.required_action.submit_tool_outputs.tool_calls
        resumed = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=waiting.id,
            thread_id=waiting.thread_id,
            tool_outputs=[{"tool_call_id": c.id, "output": "Snow"} for c in calls],
        )
        assert resumed.status in {"completed", "incomplete"}, resumed.last_error
        # The failed run no longer holds its thread: a new run goes ahead there.
        follow = client.beta.threads.runs.create_and_poll(
            thread_id=killed.thread_id, assistant_id=assistant.id, max_completion_tokens=4
        )
        assert follow.status in {"completed", "incomplete"}
        stopped, _ = _running(client, assistant.id)
    finally:
        second.stop(signal.SIGTERM)  # a clean shutdown saves the run as failed itself

    third = Served(tmp_path, database_url)
    try:
        _check_failed(third.client, stopped)
        _check_failed(third.client, killed)
    finally:
        third.stop(signal.SIGTERM)
