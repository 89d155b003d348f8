"""The Assistants API v2 end to end: the real `openai` SDK's `beta` namespace against a
real server and the bundled model, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Run, Text, TextDelta

from hearth.store import Store
from tests.conftest import MODEL

# The SDK marks the whole Assistants API deprecated; it still ships it, and Hearth serves it.
pytestmark = [
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def assistant(stored_client: openai.OpenAI) -> Any:
    return stored_client.beta.assistants.create(
        model=MODEL, name="Helper", instructions="Answer briefly.", temperature=0
    )


def _texts(client: openai.OpenAI, thread_id: str, **kw: Any) -> list[tuple[str, str]]:
    page = client.beta.threads.messages.list(thread_id, order="asc", **kw)
    return [(m.role, "".join(c.text.value for c in m.content)) for m in page.data]


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.deltas: list[str] = []
        self.done_text: list[str] = []

    def on_event(self, event: AssistantStreamEvent) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        assert snapshot.value.endswith(delta.value or "")
        self.deltas.append(delta.value or "")

    def on_text_done(self, text: Text) -> None:
        self.done_text.append(text.value)


def _in_order(events: list[str], *names: str) -> None:
    positions = [events.index(name) for name in names]
    assert positions == sorted(positions), events


def test_assistants_crud(stored_client: openai.OpenAI) -> None:
    beta = stored_client.beta
    made = beta.assistants.create(
        model=MODEL, name="A", description="d", tools=[WEATHER], metadata={"k": "v"}, top_p=0.5
    )
    assert made.object == "assistant" and made.id.startswith("asst_")
    assert made.tools[0].type == "function" and made.tools[0].function.name == "get_weather"
    got = beta.assistants.retrieve(made.id)
    assert got.model_dump() == made.model_dump()
    changed = beta.assistants.update(made.id, name="B", metadata={"k": "w"}, instructions="Hi")
    assert (changed.name, changed.metadata, changed.instructions) == ("B", {"k": "w"}, "Hi")
    assert changed.description == "d" and changed.top_p == 0.5
    assert beta.assistants.retrieve(made.id).name == "B"
    ids = [a.id for a in beta.assistants.list(limit=100)]
    assert made.id in ids
    gone = beta.assistants.delete(made.id)
    assert gone.deleted and gone.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError):
        beta.assistants.retrieve(made.id)


def test_threads_and_messages(stored_client: openai.OpenAI) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "second"}]},
        ],
        metadata={"topic": "t"},
    )
    assert thread.object == "thread" and thread.metadata == {"topic": "t"}
    assert _texts(stored_client, thread.id) == [("user", "first"), ("assistant", "second")]
    message = beta.threads.messages.create(thread.id, role="user", content="third")
    assert message.object == "thread.message" and message.thread_id == thread.id
    assert message.status == "completed" and message.run_id is None
    again = beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert again.content[0].text.value == "third"
    updated = beta.threads.messages.update(message.id, thread_id=thread.id, metadata={"a": "b"})
    assert updated.metadata == {"a": "b"}
    assert beta.threads.update(thread.id, metadata={"topic": "u"}).metadata == {"topic": "u"}
    assert beta.threads.retrieve(thread.id).metadata == {"topic": "u"}
    assert beta.threads.messages.delete(message.id, thread_id=thread.id).deleted
    assert [t for _, t in _texts(stored_client, thread.id)] == ["first", "second"]
    assert beta.threads.delete(thread.id).deleted
    with pytest.raises(openai.NotFoundError):
        beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        beta.threads.messages.list(thread.id)


def test_create_and_run_poll(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    run = beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Say hello."}]},
        max_completion_tokens=40,
    )
    assert run.status in {"completed", "incomplete"}, run.last_error
    assert run.started_at and (run.completed_at or run.incomplete_details)
    assert run.usage and run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    assert run.instructions == "Answer briefly." and run.model == MODEL
    texts = _texts(stored_client, run.thread_id)
    assert texts[0] == ("user", "Say hello.") and texts[1][0] == "assistant" and texts[1][1]
    reply = beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert len(reply) == 1 and reply[0].run_id == run.id and reply[0].assistant_id == assistant.id
    steps = beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].step_details.message_creation.message_id == reply[0].id
    assert steps[0].status == "completed" and steps[0].usage is not None
    one = beta.threads.runs.steps.retrieve(steps[0].id, thread_id=run.thread_id, run_id=run.id)
    assert one.id == steps[0].id
    assert [r.id for r in beta.threads.runs.list(run.thread_id)] == [run.id]


def test_create_and_poll_with_overrides(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(messages=[{"role": "user", "content": "Count to twenty."}])
    run = beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        instructions="You count.",
        additional_instructions="Use digits.",
        additional_messages=[{"role": "user", "content": "Go on."}],
        temperature=0,
        top_p=0.9,
        max_completion_tokens=5,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
        metadata={"case": "overrides"},
    )
    assert run.status == "incomplete"
    assert run.incomplete_details and run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage and run.usage.completion_tokens == 5
    assert run.instructions == "You count.\n\nUse digits."
    assert (run.temperature, run.top_p, run.metadata) == (0, 0.9, {"case": "overrides"})
    assert run.truncation_strategy and run.truncation_strategy.last_messages == 1
    texts = _texts(stored_client, thread.id)
    assert [t for t in texts[:2]] == [("user", "Count to twenty."), ("user", "Go on.")]
    reply = beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_tokens"
    modified = beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"x": "y"})
    assert modified.metadata == {"x": "y"} and modified.status == "incomplete"


def test_max_prompt_tokens(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(messages=[{"role": "user", "content": "word " * 300}])
    run = beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        max_prompt_tokens=50,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
    )
    assert run.status == "incomplete"
    assert run.incomplete_details and run.incomplete_details.reason == "max_prompt_tokens"
    # `auto` truncation drops the oldest messages until it fits.
    beta.threads.messages.create(thread.id, role="user", content="Hi.")
    fits = beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=60,
        max_completion_tokens=5,
    )  # fmt: skip
    assert fits.status in {"completed", "incomplete"}
    assert fits.usage and fits.usage.prompt_tokens <= 60
    assert fits.incomplete_details is None or fits.incomplete_details.reason != "max_prompt_tokens"


def test_stream_with_event_handler(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(messages=[{"role": "user", "content": "Name three colours."}])
    handler = Recorder()
    with beta.threads.runs.stream(
        thread_id=thread.id,
        assistant_id=assistant.id,
        event_handler=handler,
        max_completion_tokens=30,
    ) as stream:
        stream.until_done()
    run = stream.get_final_run()
    assert run.status in {"completed", "incomplete"}
    events = handler.events
    _in_order(
        events,
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.run.step.completed",
        f"thread.run.{run.status}",
    )
    assert events[-1] == f"thread.run.{run.status}"
    assert len(handler.deltas) > 1
    stored = beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert "".join(handler.deltas) == stored.content[0].text.value == handler.done_text[0]
    final = stream.get_final_messages()
    assert final[0].id == stored.id


def test_create_thread_and_run_stream(stored_client: openai.OpenAI, assistant: Any) -> None:
    handler = Recorder()
    with stored_client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hi!"}]},
        event_handler=handler,
        max_completion_tokens=10,
    ) as stream:
        stream.until_done()
    assert handler.events[0] == "thread.created"
    _in_order(handler.events, "thread.created", "thread.run.created", "thread.message.delta")


def _forced_call(client: openai.OpenAI, assistant: Any, tool_choice: Any) -> Run:
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tools=[WEATHER], tool_choice=tool_choice
    )
    assert run.status == "requires_action", run.last_error
    return run


def test_function_tool_round_trip_poll(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    named = {"type": "function", "function": {"name": "get_weather"}}
    run = _forced_call(stored_client, assistant, named)
    assert run.required_action and run.required_action.type == "submit_tool_outputs"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert "city" in calls[0].function.arguments
    # A thread with a run waiting for tool outputs takes no new message and no new run.
    with pytest.raises(openai.BadRequestError):
        beta.threads.messages.create(run.thread_id, role="user", content="hello?")
    with pytest.raises(openai.BadRequestError):
        beta.threads.runs.create(thread_id=run.thread_id, assistant_id=assistant.id)
    done = beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": "Sunny, 22 C"}],
    )
    assert done.status in {"completed", "incomplete"}, done.last_error
    assert done.required_action is None
    steps = beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    call = steps[0].step_details.tool_calls[0]
    assert call.id == calls[0].id and call.function.output == "Sunny, 22 C"
    assert steps[0].status == "completed"
    roles = [role for role, _ in _texts(stored_client, run.thread_id)]
    assert roles == ["user", "assistant"]


def test_function_tool_round_trip_stream(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(messages=[{"role": "user", "content": "Weather in Rome?"}])
    first = Recorder()
    with beta.threads.runs.stream(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tools=[WEATHER],
        tool_choice="required",
        event_handler=first,
    ) as stream:
        stream.until_done()
    run = stream.current_run
    assert run is not None and run.status == "requires_action"
    _in_order(
        first.events,
        "thread.run.step.created",
        "thread.run.step.delta",
        "thread.run.requires_action",
    )
    assert first.events[-1] == "thread.run.requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    second = Recorder()
    with beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "Rainy"} for c in calls],
        event_handler=second,
    ) as stream:
        stream.until_done()
    final = stream.get_final_run()
    assert final.status in {"completed", "incomplete"}
    _in_order(
        second.events, "thread.run.step.completed", "thread.run.queued", "thread.message.delta"
    )
    reply = beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert "".join(second.deltas) == reply.content[0].text.value


def test_cancel_mid_run(stored_client: openai.OpenAI, assistant: Any) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(
        messages=[{"role": "user", "content": "Write a very long story about a dragon."}]
    )
    run = beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=2000
    )
    assert run.status == "queued"
    deadline = time.monotonic() + 60
    while True:
        reply = beta.threads.messages.list(thread.id, run_id=run.id).data
        if reply and len(reply[0].content[0].text.value) > 20:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    cancelled = beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    kept = beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert kept.status == "incomplete" and kept.incomplete_details.reason == "run_cancelled"
    assert len(kept.content[0].text.value) > 20
    with pytest.raises(openai.BadRequestError):
        beta.threads.runs.cancel(run.id, thread_id=thread.id)
    # The thread is free again.
    beta.threads.messages.create(thread.id, role="user", content="Thanks.")


def test_cancel_while_waiting_for_outputs(stored_client: openai.OpenAI, assistant: Any) -> None:
    run = _forced_call(stored_client, assistant, "required")
    cancelled = stored_client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
    assert cancelled.status == "cancelled" and cancelled.required_action is None
    steps = stored_client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
    assert [s.status for s in steps] == ["cancelled"]


def test_pagination_over_25_messages(stored_client: openai.OpenAI) -> None:
    beta = stored_client.beta
    thread = beta.threads.create()
    made = [
        beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id for i in range(25)
    ]
    for order, expected in (("asc", made), ("desc", made[::-1])):
        seen, after, pages = [], None, 0
        while True:
            page = beta.threads.messages.list(
                thread.id, limit=10, order=order, **({"after": after} if after else {})
            )
            seen += [m.id for m in page.data]
            pages += 1
            assert page.first_id == page.data[0].id and page.last_id == page.data[-1].id
            if not page.has_more:
                break
            after = page.last_id
        assert seen == expected and pages == 3
        auto = [m.id for m in beta.threads.messages.list(thread.id, limit=7, order=order)]
        assert auto == expected  # the SDK's own paging follows `after`
        back = beta.threads.messages.list(thread.id, limit=5, order=order, before=expected[12])
        assert [m.id for m in back.data] == expected[7:12] and back.has_more
    empty = beta.threads.messages.list(thread.id, order="asc", after=made[-1])
    assert empty.data == [] and not empty.has_more and empty.first_id is None


def _sse(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) pairs of an SSE body."""
    pairs, name = [], ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            pairs.append((name, line[len("data: ") :]))
    return pairs


def test_stream_wire_format(stored_client: openai.OpenAI, assistant: Any) -> None:
    thread = stored_client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    body = {"assistant_id": assistant.id, "stream": True, "max_completion_tokens": 6}
    url = f"{stored_client.base_url}threads/{thread.id}/runs"
    with httpx.stream("POST", url, json=body, timeout=120) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        pairs = _sse(response)
    names = [name for name, _ in pairs]
    deltas = names.count("thread.message.delta")
    assert deltas >= 1
    status = json.loads(pairs[-2][1])["status"]  # cut at 6 tokens, unless it ended sooner
    assert status in {"completed", "incomplete"}
    assert names == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        *["thread.message.delta"] * deltas,
        f"thread.message.{status}",
        "thread.run.step.completed",
        f"thread.run.{status}",
        "done",
    ]
    assert pairs[-1] == ("done", "[DONE]")
    objects = [json.loads(data)["object"] for _, data in pairs[:-1]]
    assert objects[:3] == ["thread.run"] * 3 and objects[5] == "thread.message"
    assert objects[3] == "thread.run.step" and objects[7] == "thread.message.delta"


def test_run_goes_on_when_its_stream_client_leaves(
    stored_client: openai.OpenAI, assistant: Any
) -> None:
    beta = stored_client.beta
    thread = beta.threads.create(messages=[{"role": "user", "content": "Tell me about cats."}])
    body = {"assistant_id": assistant.id, "stream": True, "max_completion_tokens": 60}
    url = f"{stored_client.base_url}threads/{thread.id}/runs"
    with httpx.stream("POST", url, json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line == "event: thread.message.delta":
                break  # and hang up
    run_id = beta.threads.runs.list(thread.id).data[0].id
    run = beta.threads.runs.poll(run_id, thread_id=thread.id)
    assert run.status in {"completed", "incomplete"}
    assert run.usage and run.usage.completion_tokens > 1
    assert beta.threads.messages.list(thread.id, run_id=run_id).data[0].content[0].text.value


@pytest.mark.parametrize("server", ["live_server", "pg_live_server"])
def test_a_run_waiting_too_long_expires(request: pytest.FixtureRequest, server: str) -> None:
    live = request.getfixturevalue(server)
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as client:
        assistant = client.beta.assistants.create(model=MODEL, temperature=0)
        run = _forced_call(client, assistant, "required")
        listed = _forced_call(client, assistant, "required")
        blocking = _forced_call(client, assistant, "required")

        async def age(*run_ids: str) -> None:  # as if their ten minutes had passed
            store = Store(live.state.settings.store_url)
            try:
                for run_id in run_ids:
                    row = await store.threads.runs.get(run_id)
                    assert row is not None
                    data = {**row.data, "expires_at": row.data["created_at"] - 1}
                    await store.threads.runs.update(run_id, data=data)
            finally:
                await store.close()

        asyncio.run(age(run.id, listed.id, blocking.id))
        # Listed, it shows as expired; and it holds its thread no longer.
        shown = client.beta.threads.runs.list(listed.thread_id).data
        assert [(r.id, r.status) for r in shown] == [(listed.id, "expired")]
        client.beta.threads.messages.create(blocking.thread_id, role="user", content="next")
        assert (
            client.beta.threads.runs.retrieve(blocking.id, thread_id=blocking.thread_id).status
            == "expired"
        )
        expired = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
        assert expired.status == "expired" and expired.required_action is None
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
        assert [s.status for s in steps] == ["expired"] and steps[0].expired_at
        calls = run.required_action.submit_tool_outputs.tool_calls
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(
                run.id,
                thread_id=run.thread_id,
                tool_outputs=[{"tool_call_id": c.id, "output": "x"} for c in calls],
            )
        client.beta.threads.messages.create(run.thread_id, role="user", content="free again")
