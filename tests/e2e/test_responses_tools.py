"""Function tools on the Responses API: calls as output items, streamed argument deltas,
and the call's output handed back in the next turn."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(240)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
FORCED = {"type": "function", "name": "get_weather"}


def test_a_forced_call_and_its_output_in_the_next_turn(stored_client: openai.OpenAI) -> None:
    client = stored_client
    r = client.responses.create(
        model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice=FORCED,
        temperature=0, max_output_tokens=60,
    )  # fmt: skip
    assert r.status == "completed", r.status
    calls = [item for item in r.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].status == "completed"
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    assert r.tools[0].name == "get_weather"

    answer = client.responses.create(
        model=MODEL,
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny"}],
        tools=[WEATHER],
        tool_choice="none",
        temperature=0,
        max_output_tokens=20,
    )
    assert answer.status in {"completed", "incomplete"} and answer.output_text
    assert [i.type for i in answer.output] == ["message"]
    items = client.responses.input_items.list(answer.id).data
    assert items[0].type == "function_call_output" and items[0].call_id == calls[0].call_id
    # Its prompt holds turn one: the question and the call, before the call's output.
    alone = client.responses.create(
        model=MODEL,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny"}],
        max_output_tokens=4,
    )
    assert answer.usage and alone.usage and r.usage
    assert answer.usage.input_tokens >= alone.usage.input_tokens + r.usage.output_tokens


def test_streamed_call_arguments_and_replay(stored_client: openai.OpenAI) -> None:
    client = stored_client
    events = list(
        client.responses.create(
            model=MODEL, input="Weather in Rome?", tools=[WEATHER], tool_choice=FORCED,
            temperature=0, max_output_tokens=60, stream=True,
        )
    )  # fmt: skip
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "response.function_call_arguments.delta" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = events[2].item
    assert added.type == "function_call" and added.name == "get_weather"
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert args == events[-3].arguments == events[-1].response.output[0].arguments
    json.loads(args)
    replayed = list(client.responses.retrieve(events[0].response.id, stream=True))
    assert [e.type for e in replayed] == types
    assert replayed[-1].response.output[0].arguments == args


def test_tool_choice_none_answers_in_text(stored_client: openai.OpenAI) -> None:
    r = stored_client.responses.create(
        model=MODEL, input="Say hi.", tools=[WEATHER], tool_choice="none", max_output_tokens=8,
        temperature=0,
    )  # fmt: skip
    assert [i.type for i in r.output] == ["message"] and r.output_text
