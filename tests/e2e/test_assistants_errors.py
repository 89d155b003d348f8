"""Bad input to the Assistants API: a clear 4xx in the OpenAI shape naming the param,
on SQLite and PostgreSQL, and nothing stored is changed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]

BETA = {"OpenAI-Beta": "assistants=v2"}
USER_X = {"role": "user", "content": "x"}
FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture
def http(stored_client: openai.OpenAI) -> Iterator[httpx.Client]:
    base = str(stored_client.base_url)
    with httpx.Client(base_url=base, timeout=120, headers=BETA) as client:
        yield client


@pytest.fixture
def ids(http: httpx.Client) -> dict[str, str]:
    """An assistant, and a thread with one message and one finished run."""
    assistant = http.post("/assistants", json={"model": MODEL, "temperature": 0}).json()
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "Hi"}]}).json()
    run = http.post(
        f"/threads/{thread['id']}/runs",
        json={"assistant_id": assistant["id"], "max_completion_tokens": 3},
    ).json()
    _wait(http, thread["id"], run["id"], {"completed", "incomplete"})
    message = http.get(f"/threads/{thread['id']}/messages").json()["data"][-1]
    return {
        "assistant": assistant["id"],
        "thread": thread["id"],
        "run": run["id"],
        "message": message["id"],
    }


def _wait(http: httpx.Client, thread_id: str, run_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        run = http.get(f"/threads/{thread_id}/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.1)


def _error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


def test_unknown_ids_are_404(http: httpx.Client, ids: dict[str, str]) -> None:
    t, r = ids["thread"], ids["run"]
    for method, path, param in [
        ("GET", "/assistants/asst_nope", "assistant_id"),
        ("POST", "/assistants/asst_nope", "assistant_id"),
        ("DELETE", "/assistants/asst_nope", "assistant_id"),
        ("GET", "/threads/thread_nope", "thread_id"),
        ("POST", "/threads/thread_nope", "thread_id"),
        ("DELETE", "/threads/thread_nope", "thread_id"),
        ("GET", "/threads/thread_nope/messages", "thread_id"),
        ("GET", f"/threads/{t}/messages/msg_nope", "message_id"),
        ("POST", f"/threads/{t}/messages/msg_nope", "message_id"),
        ("DELETE", f"/threads/{t}/messages/msg_nope", "message_id"),
        ("GET", f"/threads/{t}/runs/run_nope", "run_id"),
        ("POST", f"/threads/{t}/runs/run_nope/cancel", "run_id"),
        ("GET", f"/threads/{t}/runs/run_nope/steps", "run_id"),
        ("GET", f"/threads/{t}/runs/{r}/steps/step_nope", "step_id"),
        ("GET", f"/threads/thread_nope/runs/{r}", "thread_id"),
    ]:
        body = {} if method == "POST" else None
        error = _error(http.request(method, path, json=body), 404, param)
        assert "nope" in error["message"]
    _error(http.post("/threads/thread_nope/messages", json={"role": "user", "content": "x"}), 404)
    _error(http.post(f"/threads/{t}/runs", json={"assistant_id": "asst_nope"}), 404)
    _error(http.post("/threads/runs", json={"assistant_id": "asst_nope"}), 404, "assistant_id")
    _error(
        http.post(
            f"/threads/{t}/runs/run_nope/submit_tool_outputs",
            json={"tool_outputs": [{"tool_call_id": "x", "output": "y"}]},
        ),
        404,
        "run_id",
    )
    # A message of another thread is not found through this one.
    other = http.post("/threads", json={}).json()["id"]
    _error(http.get(f"/threads/{other}/messages/{ids['message']}"), 404, "message_id")
    _error(http.get(f"/threads/{t}/messages", params={"after": "msg_nope"}), 404, "after")
    _error(http.get(f"/threads/{t}/messages", params={"before": "msg_nope"}), 404, "before")


def test_sdk_raises_not_found(stored_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stored_client.beta.threads.runs.retrieve("run_x", thread_id="thread_x")
    assert caught.value.body["param"] == "thread_id"  # type: ignore[index]


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"k{i}": "v" for i in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata"),
        ({"k": "v" * 513}, "metadata.k"),
        ({"k": 5}, "metadata.k"),
    ],
)
def test_metadata_limits(
    http: httpx.Client, ids: dict[str, str], metadata: dict[str, Any], param: str
) -> None:
    t = ids["thread"]
    for path, body in [
        ("/assistants", {"model": MODEL}),
        (f"/assistants/{ids['assistant']}", {}),
        ("/threads", {}),
        (f"/threads/{t}", {}),
        (f"/threads/{t}/messages", {"role": "user", "content": "x"}),
        (f"/threads/{t}/messages/{ids['message']}", {}),
        (f"/threads/{t}/runs/{ids['run']}", {}),
    ]:
        _error(http.post(path, json={**body, "metadata": metadata}), 400, param)
    _error(
        http.post("/threads", json={"messages": [{**USER_X, "metadata": metadata}]}),
        400,
        f"messages[0].{param}",
    )
    # Nothing was changed by the refused updates.
    assert http.get(f"/threads/{t}").json()["metadata"] == {}
    assert http.get(f"/assistants/{ids['assistant']}").json()["metadata"] == {}
    fits = {f"k{i}": "v" * 512 for i in range(16)}
    assert http.post(f"/threads/{t}", json={"metadata": fits}).json()["metadata"] == fits


@pytest.mark.parametrize("kind", ["code_interpreter", "file_search"])
def test_hosted_tools_are_refused(http: httpx.Client, ids: dict[str, str], kind: str) -> None:
    error = _error(
        http.post("/assistants", json={"model": MODEL, "tools": [FUNCTION, {"type": kind}]}),
        400,
        "tools[1].type",
    )
    assert kind in error["message"] and "not supported" in error["message"]
    body = {"assistant_id": ids["assistant"], "tools": [{"type": kind}]}
    error = _error(http.post(f"/threads/{ids['thread']}/runs", json=body), 400, "tools[0].type")
    assert "not supported" in error["message"]
    _error(http.post("/threads/runs", json=body), 400, "tools[0].type")
    choice = {"assistant_id": ids["assistant"], "tools": [FUNCTION], "tool_choice": {"type": kind}}
    _error(http.post(f"/threads/{ids['thread']}/runs", json=choice), 400, "tool_choice")
    # Nothing was stored by the refused runs.
    assert len(http.get(f"/threads/{ids['thread']}/runs").json()["data"]) == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [FUNCTION], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"truncation_strategy": {"type": "last_messages"}}, "truncation_strategy.last_messages"),
        ({"truncation_strategy": {"type": "middle"}}, "truncation_strategy.type"),
        ({"temperature": 3}, "temperature"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"model": "no-such-model"}, None),
        (
            {"additional_messages": [{"role": "system", "content": "x"}]},
            "additional_messages[0].role",
        ),
        (
            {"additional_messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "additional_messages[0].content[0]",
        ),
        ({"additional_messages": ["x"]}, "additional_messages[0]"),
        ({"additional_messages": [{"content": "x"}]}, "additional_messages[0].role"),
    ],
)
def test_bad_run_parameters(
    http: httpx.Client, ids: dict[str, str], body: dict[str, Any], param: str | None
) -> None:
    response = http.post(
        f"/threads/{ids['thread']}/runs", json={"assistant_id": ids["assistant"], **body}
    )
    if param is None:
        assert _error(response, 404)["code"] == "model_not_found"
    else:
        _error(response, 400, param)
    assert len(http.get(f"/threads/{ids['thread']}/runs").json()["data"]) == 1


def test_bad_messages_and_pages(http: httpx.Client, ids: dict[str, str]) -> None:
    t = ids["thread"]
    path = f"/threads/{t}/messages"
    _error(http.post(path, json={"role": "system", "content": "x"}), 400, "role")
    _error(http.post(path, json={"role": "user", "content": []}), 400, "content")
    attach = {"role": "user", "content": "x", "attachments": [{"file_id": "f"}]}
    _error(http.post(f"/threads/{t}/messages", json=attach), 400, "attachments")
    _error(http.post("/threads", json={"tool_resources": {"file_search": {}}}), 400)
    _error(http.post("/threads", json={"messages": [{"role": "user"}]}), 400, "messages[0].content")
    run = {"assistant_id": ids["assistant"], "thread": "x"}
    _error(http.post("/threads/runs", json=run), 400, "thread")
    for params, param in [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"order": "up"}, "order"),
    ]:
        _error(http.get(f"/threads/{t}/messages", params=params), 400, param)
        _error(http.get("/assistants", params=params), 400, param)
    assert len(http.get(f"/threads/{t}/messages", params={"limit": "100"}).json()["data"]) == 2


def test_tool_outputs_rules(http: httpx.Client, ids: dict[str, str]) -> None:
    t, a = ids["thread"], ids["assistant"]
    finished = f"/threads/{t}/runs/{ids['run']}/submit_tool_outputs"
    outputs = {"tool_outputs": [{"tool_call_id": "call_x", "output": "y"}]}
    error = _error(http.post(finished, json=outputs), 400, "run_id")
    assert "do not accept tool outputs" in error["message"]
    run = http.post(
        f"/threads/{t}/runs",
        json={"assistant_id": a, "tools": [FUNCTION], "tool_choice": "required"},
    ).json()
    run = _wait(http, t, run["id"], {"requires_action", "failed"})
    assert run["status"] == "requires_action", run
    calls = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
    path = f"/threads/{t}/runs/{run['id']}/submit_tool_outputs"
    _error(http.post(path, json=outputs), 400, "tool_outputs[0].tool_call_id")
    _error(http.post(path, json={"tool_outputs": []}), 400, "tool_outputs")
    if len(calls) > 1:
        _error(
            http.post(path, json={"tool_outputs": [{"tool_call_id": calls[0], "output": "1"}]}),
            400,
            "tool_outputs",
        )
    twice = [{"tool_call_id": calls[0], "output": "1"}] * 2
    _error(http.post(path, json={"tool_outputs": twice}), 400, "tool_outputs[1].tool_call_id")
    # The run still waits, and its thread takes no message and no run meanwhile.
    assert http.get(f"/threads/{t}/runs/{run['id']}").json()["status"] == "requires_action"
    error = _error(http.post(f"/threads/{t}/messages", json={"role": "user", "content": "x"}), 400)
    assert run["id"] in error["message"]
    _error(http.post(f"/threads/{t}/runs", json={"assistant_id": a}), 400, "thread_id")
    good = {"tool_outputs": [{"tool_call_id": c, "output": "42"} for c in calls]}
    assert http.post(path, json=good).json()["status"] == "queued"
    _wait(http, t, run["id"], {"completed", "incomplete"})
    _error(http.post(path, json=good), 400, "run_id")


def test_message_while_a_run_is_in_progress(http: httpx.Client, ids: dict[str, str]) -> None:
    t = ids["thread"]
    run = http.post(
        f"/threads/{t}/runs",
        json={"assistant_id": ids["assistant"], "max_completion_tokens": 500,
              "additional_messages": [{"role": "user", "content": "Tell a long story."}]},
    ).json()  # fmt: skip
    error = _error(http.post(f"/threads/{t}/messages", json={"role": "user", "content": "x"}), 400)
    assert "while a run" in error["message"]
    assert http.post(f"/threads/{t}/runs/{run['id']}/cancel").json()["status"] == "cancelled"
    assert http.post(f"/threads/{t}/messages", json=USER_X).status_code == 200


def test_deleting_a_thread_removes_its_messages_and_runs(
    http: httpx.Client, ids: dict[str, str]
) -> None:
    t = ids["thread"]
    assert http.delete(f"/threads/{t}").json() == {
        "id": t,
        "object": "thread.deleted",
        "deleted": True,
    }
    _error(http.get(f"/threads/{t}/messages"), 404)
    _error(http.get(f"/threads/{t}/runs/{ids['run']}"), 404)
    # The assistant is not the thread's: it stays.
    assert http.get(f"/assistants/{ids['assistant']}").status_code == 200
    _error(http.delete(f"/threads/{t}"), 404, "thread_id")
