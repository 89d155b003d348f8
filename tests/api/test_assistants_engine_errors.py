"""Runs whose generation fails, with a scripted backend: the run ends `failed` with its
last_error, the reply so far is kept (incomplete), and a stream says so and ends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hearth.engine.fake import FakeBackend
from tests.api.test_error_shapes import Exploding, registry_of
from tests.conftest import LiveServer, make_settings
from tests.e2e.test_ollama_errors import CALLING, WEATHER


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    registry = registry_of(
        FakeBackend("fails-midway", "one two three four five six", fail_after=3),
        Exploding("explodes"),
        FakeBackend("calls", CALLING),
    )
    settings = make_settings(Path(tmp_path_factory.mktemp("fake-assistants")))
    live = LiveServer(settings, registry).start()
    with httpx.Client(base_url=f"{live.url}/v1", timeout=60) as client:
        yield client
    live.stop()


def _streamed_run(http: httpx.Client, model: str) -> tuple[list[str], list[dict], str]:
    assistant = http.post("/assistants", json={"model": model}).json()
    body = {
        "assistant_id": assistant["id"],
        "thread": {"messages": [{"role": "user", "content": "hi"}]},
        "stream": True,
    }
    names, datas = [], []
    with http.stream("POST", "/threads/runs", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                names.append(line[7:])
            elif line.startswith("data: "):
                datas.append(line[6:])
    assert datas[-1] == "[DONE]" and names[-1] == "done"
    thread_id = json.loads(datas[0])["id"]
    return names[:-1], [json.loads(d) for d in datas[:-1]], thread_id


def test_engine_failure_mid_run(http: httpx.Client) -> None:
    names, datas, thread_id = _streamed_run(http, "fails-midway")
    assert names[0] == "thread.created" and "thread.message.delta" in names
    assert names[-3:] == [
        "thread.message.incomplete",
        "thread.run.step.failed",
        "thread.run.failed",
    ]
    run = datas[-1]
    assert run["status"] == "failed" and run["failed_at"]
    assert run["last_error"]["code"] == "server_error"
    assert "scripted engine failure" in run["last_error"]["message"]
    stored = http.get(f"/threads/{thread_id}/runs/{run['id']}").json()
    assert stored["status"] == "failed" and stored["last_error"] == run["last_error"]
    reply = http.get(f"/threads/{thread_id}/messages", params={"run_id": run["id"]}).json()
    message = reply["data"][0]
    assert message["status"] == "incomplete"
    assert message["incomplete_details"] == {"reason": "run_failed"}
    assert message["content"][0]["text"]["value"].split() == ["one", "two", "three"]
    steps = http.get(f"/threads/{thread_id}/runs/{run['id']}/steps").json()["data"]
    assert [s["status"] for s in steps] == ["failed"] and steps[0]["last_error"]


def test_internal_error_is_an_error_event_without_details(http: httpx.Client) -> None:
    names, datas, thread_id = _streamed_run(http, "explodes")
    assert names[-2:] == ["error", "thread.run.failed"]
    assert datas[-2]["code"] == "server_error" and datas[-2]["message"]
    assert "secret" not in json.dumps(datas)
    stored = http.get(f"/threads/{thread_id}/runs/{datas[-1]['id']}").json()
    assert stored["status"] == "failed" and stored["last_error"]["code"] == "server_error"
    assert "secret" not in stored["last_error"]["message"]
    # The thread is free for the next run.
    message = {"role": "user", "content": "again"}
    assert http.post(f"/threads/{thread_id}/messages", json=message).status_code == 200


@pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")
def test_a_call_cut_by_max_completion_tokens_ends_the_run_incomplete(http: httpx.Client) -> None:
    """No tool outputs are asked for a call whose arguments were never finished."""
    client = openai.OpenAI(base_url=str(http.base_url), api_key="unused", max_retries=0)
    assistant = client.beta.assistants.create(model="calls", tools=[WEATHER])  # type: ignore[list-item]
    thread = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
    cut = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread=thread, max_completion_tokens=6, poll_interval_ms=50
    )  # type: ignore[arg-type]
    assert cut.status == "incomplete" and cut.required_action is None
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_completion_tokens"
    whole = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread=thread, poll_interval_ms=50
    )  # type: ignore[arg-type]
    assert whole.status == "requires_action" and whole.required_action is not None
    [call] = whole.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Paris, France"}
