"""Tool calls through the real openai SDK: the real model for forced calls (a 135M model
never opens a call on its own), a scripted backend for the parsing of calls the model
chooses to make, streamed and not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import ollama
import openai
import pydantic
import pytest

from hearth.engine.fake import FakeBackend
from hearth.engine.llama_cpp.model import LlamaModel
from tests.conftest import MODEL, LiveServer, make_settings, registry_of

CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 24},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather in a city", "parameters": CITY},
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time in a timezone",
        "parameters": {
            "type": "object",
            "properties": {"tz": {"type": "string", "maxLength": 20}},
            "required": ["tz"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
# Room for the most calls a reply may make (8), each bounded by its schema: a reply with
# parallel calls then always ends on its own, whatever the sampled number of calls.
ROOM = 640


def calls_of(message: object) -> list[tuple[str, dict]]:
    return [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]  # type: ignore[attr-defined]


def test_required_always_yields_a_valid_call(client: openai.OpenAI) -> None:
    schemas = {"get_weather": CITY, "get_time": TIME["function"]["parameters"]}
    for seed in range(20):
        reply = client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
            temperature=1.0, seed=seed, max_tokens=120, parallel_tool_calls=False,
        )  # fmt: skip
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls", seed
        assert choice.message.content is None
        calls = choice.message.tool_calls or []
        assert calls, seed
        for call in calls:
            assert call.type == "function" and call.id.startswith("call_")
            jsonschema.validate(json.loads(call.function.arguments), schemas[call.function.name])
        assert len(calls) == 1


def test_a_named_function_is_called_exactly_once(client: openai.OpenAI) -> None:
    for seed in range(3):
        reply = client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER, TIME], temperature=1.0, seed=seed,
            tool_choice={"type": "function", "function": {"name": "get_time"}}, max_tokens=120,
        )  # fmt: skip
        [(name, args)] = calls_of(reply.choices[0].message)
        assert name == "get_time" and isinstance(args["tz"], str)


def test_parallel_calls_are_several_valid_calls(client: openai.OpenAI) -> None:
    most = 0
    for seed in range(8):  # most seeds make 2 or more calls; at most 8 are allowed
        reply = client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required",
            temperature=1.0, seed=seed, max_tokens=400,
        )  # fmt: skip
        calls = calls_of(reply.choices[0].message)
        assert reply.choices[0].finish_reason == "tool_calls"
        assert 1 <= len(calls) <= 8
        for _, args in calls:
            jsonschema.validate(args, CITY)
        most = max(most, len(calls))
        if most > 1:
            break
    assert most > 1


def test_stream_and_whole_give_the_same_calls(client: openai.OpenAI) -> None:
    args = {
        "model": MODEL, "messages": ASK, "tools": [WEATHER, TIME], "tool_choice": "required",
        "temperature": 1.0, "seed": 7, "max_tokens": ROOM,
    }  # fmt: skip
    # Once first, so both below start from the same cached prompt: a prompt decoded in
    # one batch and one mostly reused from the cache differ in the last bits of their
    # logits, which can tip a sampled token (llama-server behaves the same).
    client.chat.completions.create(**{**args, "max_tokens": 1})  # type: ignore[call-overload]
    whole = calls_of(client.chat.completions.create(**args).choices[0].message)  # type: ignore[call-overload]
    with client.chat.completions.stream(**args) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    assert calls_of(final.choices[0].message) == whole
    assert final.choices[0].finish_reason == "tool_calls"


def test_raw_sse_deltas(live_server: LiveServer) -> None:
    body = {
        "model": MODEL, "messages": ASK, "tools": [WEATHER, TIME], "tool_choice": "required",
        "temperature": 1.0, "seed": 0, "max_tokens": ROOM, "stream": True,
    }  # fmt: skip
    check_sse(live_server.url, body)


def check_sse(url: str, body: dict) -> list[dict]:
    """Every call announced once with id, type and name; its argument pieces add up to a
    JSON object; no call syntax among the content deltas. Returns the calls."""
    calls: list[dict] = []
    content = ""
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    finish = None
    for raw in events[:-1]:
        choice = json.loads(raw)["choices"][0]
        delta = choice["delta"]
        content += delta.get("content") or ""
        finish = choice["finish_reason"] or finish
        for piece in delta.get("tool_calls") or []:
            if "id" in piece:
                assert piece["index"] == len(calls)
                assert piece["type"] == "function" and piece["function"]["name"]
                calls.append({"name": piece["function"]["name"], "arguments": ""})
            else:
                assert set(piece) == {"index", "function"}
            calls[piece["index"]]["arguments"] += piece["function"]["arguments"]
    assert calls and finish == "tool_calls"
    assert "<tool_call>" not in content and "</tool_call>" not in content
    for call in calls:
        assert isinstance(json.loads(call["arguments"]), dict)
    return calls


def test_call_result_answer_loop(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required", temperature=0,
        parallel_tool_calls=False, max_tokens=120,
    )  # fmt: skip
    message = first.choices[0].message
    call = (message.tool_calls or [])[0]
    history = [
        *ASK,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "sunny"}'},
    ]
    answer = client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], temperature=0, max_tokens=40
    )
    assert answer.choices[0].finish_reason in {"stop", "length"}
    assert answer.choices[0].message.content
    assert "<tool_call>" not in answer.choices[0].message.content
    assert answer.usage is not None and first.usage is not None
    assert answer.usage.prompt_tokens > first.usage.prompt_tokens  # the call and its result


class Weather(pydantic.BaseModel):
    city: str = pydantic.Field(max_length=24)
    celsius: bool


def test_sdk_parse_with_a_pydantic_tool(client: openai.OpenAI) -> None:
    reply = client.chat.completions.parse(
        model=MODEL, messages=ASK, tools=[openai.pydantic_function_tool(Weather)],
        tool_choice="required", temperature=0, max_tokens=120,
    )  # fmt: skip
    call = (reply.choices[0].message.tool_calls or [])[0]
    assert isinstance(call.function.parsed_arguments, Weather)


def test_auto_a_call_the_model_opens_is_constrained_from_its_tag(
    client: openai.OpenAI, model_path: Path
) -> None:
    """The 135M model never opens a call by itself; a nudge on the tokens of `<tool_call>`
    makes it, and from that tag on the lazy grammar keeps the call valid."""
    model = LlamaModel(model_path)
    try:
        tag = model.tokenize("<tool_call>", add_special=False, parse_special=True)
    finally:
        model.close()
    nudge = {str(t): 5 for t in tag}
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], temperature=0, max_tokens=120,
        logit_bias=nudge, parallel_tool_calls=False,
    )  # fmt: skip
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    [(name, args)] = calls_of(choice.message)
    assert name == "get_weather"
    jsonschema.validate(args, CITY)


def test_tool_choice_none_answers_in_text(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none", temperature=0,
        max_tokens=20,
    )  # fmt: skip
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "objekt"}},
                    }
                ]
            },
            "tools[0].function.parameters",
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {
                                "type": "object",
                                "properties": {"n": {"type": "string", "format": "uri"}},
                            },
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
        ),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
        (
            {"messages": [*ASK, {"role": "tool", "tool_call_id": "call_9", "content": "1"}]},
            "messages[1].tool_call_id",
        ),
    ],
)
def test_bad_tool_input_is_400_with_param(client: openai.OpenAI, extra: dict, param: str) -> None:
    args = {"model": MODEL, "messages": ASK, "max_tokens": 5, **extra}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**args)  # type: ignore[call-overload]
    body = info.value.body
    assert isinstance(body, dict)
    assert body["param"] == param, body


# A model that chooses to call: scripted, in 3-character tokens that split every tag.
CHOSEN = (
    "Checking both.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n'
    "</tool_call>\n<tool_call>\n"
    '{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n</tool_call>'
)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    registry = registry_of(FakeBackend("caller", CHOSEN, token_chars=3))
    live = LiveServer(make_settings(Path(tmp_path_factory.mktemp("tools"))), registry).start()
    yield live
    live.stop()


def test_calls_the_model_chose_whole_and_streamed(scripted: LiveServer) -> None:
    body = {"model": "caller", "messages": ASK, "tools": [WEATHER, TIME]}
    calls = check_sse(scripted.url, {**body, "stream": True})
    expected = [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == expected
    with openai.OpenAI(base_url=f"{scripted.url}/v1", api_key="x", max_retries=0) as c:
        whole = c.chat.completions.create(**body)  # type: ignore[call-overload]
        assert whole.choices[0].message.content == "Checking both.\n"
        assert calls_of(whole.choices[0].message) == expected
        with c.chat.completions.stream(**body) as stream:  # type: ignore[arg-type]
            streamed = stream.get_final_completion()
            assert calls_of(streamed.choices[0].message) == expected
            assert streamed.choices[0].message.content == "Checking both.\n"
        # Without tools the same text is only text.
        plain = c.chat.completions.create(model="caller", messages=ASK)
        assert plain.choices[0].message.content == CHOSEN


def test_ollama_tool_call_round_trip(scripted: LiveServer, ollama_client: ollama.Client) -> None:
    """The call leg from the scripted model that chooses to call, the answer leg from the
    real model given the call and its result."""
    tools = [WEATHER, TIME]
    with ollama.Client(host=scripted.url) as caller:
        reply = caller.chat(model="caller", messages=ASK, tools=tools)
        streamed = list(caller.chat(model="caller", messages=ASK, tools=tools, stream=True))
    expected = [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    calls = reply.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == expected
    assert reply.done_reason == "stop"
    streamed_calls = [c for part in streamed for c in part.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in streamed_calls] == expected
    assert "<tool_call>" not in "".join(part.message.content or "" for part in streamed)
    history = [
        *ASK,
        reply.message,
        {"role": "tool", "tool_name": "get_weather", "content": "21 C, sunny"},
        {"role": "tool", "tool_name": "get_time", "content": "14:05"},
    ]
    answer = ollama_client.chat(
        model=MODEL, messages=history, tools=tools, options={"temperature": 0, "num_predict": 30}
    )
    assert answer.message.content and not answer.message.tool_calls
    assert answer.prompt_eval_count and answer.prompt_eval_count > 200  # tools, call, results
