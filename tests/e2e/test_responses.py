"""The Responses API with the real `openai` SDK and model, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import openai
import pytest

from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(240)

STORY = "Write a long story about a cat who sails around the world."


def test_create_retrieve_input_items_delete(stored_client: openai.OpenAI) -> None:
    client = stored_client
    r = client.responses.create(
        model=MODEL,
        input="Say hello.",
        instructions="You are terse.",
        max_output_tokens=16,
        temperature=0,
        metadata={"case": "basic"},
    )
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status in {"completed", "incomplete"} and r.output_text
    assert r.instructions == "You are terse." and r.metadata == {"case": "basic"}
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage is not None and r.usage.output_tokens <= 16
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    if r.status == "incomplete":
        assert r.incomplete_details is not None
        assert r.incomplete_details.reason == "max_output_tokens"
    else:
        assert r.completed_at is not None

    got = client.responses.retrieve(r.id)
    assert got.output_text == r.output_text and got.status == r.status
    assert got.usage == r.usage

    items = client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].role == "user" and items.data[0].content[0].text == "Say hello."

    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_input_items_page_and_function_call_outputs(stored_client: openai.OpenAI) -> None:
    client = stored_client
    r = client.responses.create(
        model=MODEL,
        input=[
            {"role": "system", "content": "Use the tool results."},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        ],
        max_output_tokens=8,
        temperature=0,
    )
    assert r.status in {"completed", "incomplete"}
    first = client.responses.input_items.list(r.id, limit=2, order="asc")
    assert [i.type for i in first.data] == ["message", "function_call"]
    assert first.has_more and first.first_id == first.data[0].id
    rest = client.responses.input_items.list(r.id, limit=2, order="asc", after=first.last_id)
    assert [i.type for i in rest.data] == ["function_call_output", "message"]
    assert not rest.has_more
    assert rest.data[0].call_id == "call_1" and rest.data[0].output == "Sunny, 21 C"
    newest = client.responses.input_items.list(r.id, limit=1)  # default order: desc
    assert newest.data[0].id == rest.data[1].id


def test_streamed_response_events_and_resume(stored_client: openai.OpenAI) -> None:
    client = stored_client
    events = list(
        client.responses.create(
            model=MODEL, input="Name three colours.", max_output_tokens=24, temperature=0,
            stream=True,
        )
    )  # fmt: skip
    types = [e.type for e in events]
    n_deltas = types.count("response.output_text.delta")
    assert n_deltas >= 1
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * n_deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        types[-1],
    ]
    assert types[-1] in {"response.completed", "response.incomplete"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-4]
    assert done.type == "response.output_text.done" and done.text == text
    final = events[-1].response
    assert final.output_text == text and final.usage is not None
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert item_ids == {final.output[0].id}

    # The stored stream resumes after any sequence number, event for event.
    resumed = list(client.responses.retrieve(final.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in resumed] == list(range(4, len(events)))
    assert [e.type for e in resumed] == types[4:]
    assert "".join(e.delta for e in resumed if e.type == "response.output_text.delta") == text


def test_background_response_grows_while_polled(stored_client: openai.OpenAI) -> None:
    client = stored_client
    r = client.responses.create(
        model=MODEL, input=STORY, max_output_tokens=160, temperature=0, background=True
    )
    assert r.status in {"queued", "in_progress"} and r.background
    lengths, texts = [], []
    deadline = time.monotonic() + 180
    while True:
        got = client.responses.retrieve(r.id)
        if got.status not in {"queued", "in_progress"}:
            break
        lengths.append(len(got.output_text))
        texts.append(got.output_text)
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert got.status in {"completed", "incomplete"}
    growing = sorted(set(n for n in lengths if n > 0))
    assert len(growing) >= 2, f"the text never grew while polled: {lengths}"
    assert lengths == sorted(lengths)  # it never shrinks
    assert all(got.output_text.startswith(t) for t in texts)
    assert got.usage is not None and got.usage.output_tokens > 0


def test_background_response_cancelled_midway_keeps_its_text(
    stored_client: openai.OpenAI,
) -> None:
    client = stored_client
    r = client.responses.create(
        model=MODEL, input=STORY, max_output_tokens=600, temperature=0, background=True
    )
    deadline = time.monotonic() + 120
    while not client.responses.retrieve(r.id).output_text:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled" and cancelled.output_text
    time.sleep(0.5)
    again = client.responses.retrieve(r.id)
    assert again.status == "cancelled" and again.output_text == cancelled.output_text
    assert again.output[0].status == "incomplete"
    assert client.responses.cancel(r.id).status == "cancelled"  # idempotent
    # Its stored stream ends, with the same text.
    events = list(client.responses.retrieve(r.id, stream=True))
    assert events[-1].response.status == "cancelled"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == cancelled.output_text


def test_previous_response_id_carries_turn_one(stored_client: openai.OpenAI) -> None:
    client = stored_client
    one = client.responses.create(
        model=MODEL, input="My cat is called Biscuit. Say OK.", max_output_tokens=12,
        temperature=0,
    )  # fmt: skip
    two = client.responses.create(
        model=MODEL, input="What is my cat called?", previous_response_id=one.id,
        max_output_tokens=12, temperature=0,
    )  # fmt: skip
    assert two.previous_response_id == one.id
    alone = client.responses.create(
        model=MODEL, input="What is my cat called?", max_output_tokens=12, temperature=0
    )
    assert one.usage and two.usage and alone.usage
    # Turn two's prompt holds turn one's question and answer, and reuses its cached prefix.
    carried = one.usage.input_tokens + one.usage.output_tokens
    assert two.usage.input_tokens >= carried + alone.usage.input_tokens - 30
    assert two.usage.input_tokens_details.cached_tokens > 0
    three = client.responses.create(
        model=MODEL, input="Thanks.", previous_response_id=two.id, max_output_tokens=4
    )
    assert three.usage and three.usage.input_tokens > two.usage.input_tokens


def test_structured_output_with_text_format(stored_client: openai.OpenAI) -> None:
    import json

    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    r = stored_client.responses.create(
        model=MODEL,
        input="Invent a person.",
        text={"format": {"type": "json_schema", "name": "person", "schema": schema}},
        max_output_tokens=60,
        temperature=0,
    )
    data = json.loads(r.output_text)
    assert set(data) == {"name", "age"} and isinstance(data["age"], int)
    assert r.text.format.type == "json_schema"


def test_foreground_stream_stops_when_its_client_leaves(stored_client: openai.OpenAI) -> None:
    client = stored_client
    with client.responses.create(
        model=MODEL, input=STORY, max_output_tokens=800, temperature=0, stream=True
    ) as stream:
        for event in stream:
            if event.type == "response.created":
                response_id = event.response.id
            if event.sequence_number > 8:
                break
    deadline = time.monotonic() + 30
    while (got := client.responses.retrieve(response_id)).status == "in_progress":
        assert time.monotonic() < deadline, "the generation went on without its client"
        time.sleep(0.1)
    assert got.status == "cancelled" and got.output_text


def test_background_stream_outlives_its_client_and_resumes(stored_client: openai.OpenAI) -> None:
    client = stored_client
    seen = []
    with client.responses.create(
        model=MODEL, input="Describe the sea.", max_output_tokens=60, temperature=0,
        stream=True, background=True,
    ) as stream:  # fmt: skip
        for event in stream:
            seen.append(event)
            if len(seen) == 6:
                break
    assert seen[0].type == "response.created" and seen[0].response.status == "queued"
    response_id = seen[0].response.id
    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=5))
    assert rest[0].sequence_number == 6 and rest[-1].type in {
        "response.completed",
        "response.incomplete",
    }
    text = "".join(e.delta for e in [*seen, *rest] if e.type == "response.output_text.delta")
    assert (
        text == rest[-1].response.output_text == client.responses.retrieve(response_id).output_text
    )
