"""engine/upstream/wire.py: the OpenAI request an upstream gets, and its chunks read back."""

from __future__ import annotations

import pytest

from hearth.chat.structured import json_object_grammar, schema_grammar
from hearth.core.errors import InvalidRequest
from hearth.engine.types import (
    ChatMessage,
    Finished,
    GenerationRequest,
    Grammar,
    ReasoningDelta,
    SamplingParams,
    TokenEvent,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from hearth.engine.upstream.counting import TOKENS_PER_MESSAGE, estimate_prompt
from hearth.engine.upstream.wire import ChunkReader, Malformed, UpstreamStreamError, request_body

TOOL = Tool("get_weather", "weather", {"type": "object", "properties": {}})


def test_a_chat_request_with_tools_and_sampling() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
    request = GenerationRequest(
        model="front-name",
        messages=(
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", None, tool_calls=(call,)),
            ChatMessage("tool", "rain", tool_call_id="call_1"),
        ),
        sampling=SamplingParams(temperature=0.5, top_k=20, seed=7, logit_bias={42: -100.0}),
        tools=(TOOL,),
        tool_name="get_weather",
        parallel_tool_calls=False,
        stop=("END",),
        max_tokens=9,
        n=2,
        logprobs=3,
    )
    path, body = request_body(request, "org/model")
    assert path == "/chat/completions"
    assert body["model"] == "org/model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_k"], body["seed"]) == (0.5, 20, 7)
    assert "min_p" not in body and body["logit_bias"] == {"42": -100.0}
    assert (body["n"], body["stop"], body["max_tokens"]) == (2, ["END"], 9)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 3)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assistant, tool = body["messages"][1], body["messages"][2]
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert tool == {"role": "tool", "content": "rain", "tool_call_id": "call_1"}


def test_formats_prompts_and_what_an_upstream_cannot_take() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat = GenerationRequest(model="m", messages=(ChatMessage("user", "x"),))
    _, body = request_body(
        GenerationRequest(**{**_fields(chat), "grammar": schema_grammar(schema)}), "m"
    )
    assert body["response_format"]["json_schema"]["schema"] == schema
    _, body = request_body(
        GenerationRequest(**{**_fields(chat), "grammar": json_object_grammar()}), "m"
    )
    assert body["response_format"] == {"type": "json_object"}
    with pytest.raises(InvalidRequest, match="not a grammar"):
        request_body(GenerationRequest(**{**_fields(chat), "grammar": Grammar("root ::= x")}), "m")
    with pytest.raises(InvalidRequest, match="chat template"):
        request_body(GenerationRequest(**{**_fields(chat), "template": "{{ x }}"}), "m")
    path, body = request_body(GenerationRequest(model="m", prompt_ids=(1, 2), logprobs=0), "m")
    assert path == "/completions" and body["prompt"] == [1, 2] and body["logprobs"] == 0


def _fields(request: GenerationRequest) -> dict[str, object]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def _chunk(**choice: object) -> dict[str, object]:
    return {"choices": [{"index": 0, "finish_reason": None, **choice}]}


def test_chunks_become_events() -> None:
    reader = ChunkReader(n=1)
    assert reader.read(_chunk(delta={"role": "assistant", "content": ""})) == []
    lp = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}
    [event] = reader.read(_chunk(delta={"content": "Hi"}, logprobs={"content": [lp]}))
    assert isinstance(event, TokenEvent) and event.text == "Hi"
    assert event.logprobs[0].logprob == -0.5 and event.logprobs[0].bytes == b"Hi"
    first = {"index": 0, "id": "call_9", "function": {"name": "f", "arguments": '{"a"'}}
    again = {"index": 0, "id": "call_9", "function": {"arguments": ": 1}"}}
    calls = reader.read(_chunk(delta={"tool_calls": [first]}))
    calls += reader.read(_chunk(delta={"tool_calls": [again]}))
    assert calls == [
        ToolCallDelta(call=0, arguments='{"a"', index=0, id="call_9", name="f"),
        ToolCallDelta(call=0, arguments=": 1}", index=0),
    ]
    assert reader.read(_chunk(delta={}, finish_reason="tool_calls", stop_reason=None)) == []
    reader.read({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}})
    assert reader.state(0).reason == "tool_calls" and reader.usage == (5, 4)
    assert not any(isinstance(e, Finished) for e in calls)


def test_a_text_completion_chunk_and_bad_ones() -> None:
    reader = ChunkReader(n=2)
    [event] = reader.read({"choices": [{"index": 1, "text": " once", "finish_reason": "length"}]})
    assert event == TokenEvent(" once", index=1) and reader.state(1).reason == "length"
    for bad in ([], {"choices": "no"}, {"choices": [{"index": 2, "text": "x"}]}):
        with pytest.raises(Malformed):
            reader.read(bad)
    with pytest.raises(UpstreamStreamError, match="out of memory"):
        reader.read({"error": {"message": "out of memory"}})


def test_the_prompt_estimate_where_no_member_counts() -> None:
    assert estimate_prompt(GenerationRequest(model="m", prompt="x" * 10)) == 3  # 4 bytes a token
    assert estimate_prompt(GenerationRequest(model="m", prompt_ids=(5, 6, 7))) == 3
    chat = GenerationRequest(model="m", messages=(ChatMessage("user", "x" * 8),))
    assert estimate_prompt(chat) == TOKENS_PER_MESSAGE + 2
    with_tools = GenerationRequest(**{**_fields(chat), "tools": (TOOL,)})
    assert estimate_prompt(with_tools) > estimate_prompt(chat)


def test_an_engines_reasoning_stays_apart_and_thinking_is_asked_for() -> None:
    reader = ChunkReader(n=1)
    assert reader.read(_chunk(delta={"reasoning_content": "Hmm. "})) == [ReasoningDelta("Hmm. ")]
    both = reader.read(_chunk(delta={"reasoning": "So", "content": "Hi"}))
    assert both == [TokenEvent("Hi"), ReasoningDelta("So")]
    quiet = GenerationRequest(
        model="m", messages=(ChatMessage("user", "hi"),), think=False, reasoning_effort="low"
    )
    _, body = request_body(quiet, "m")
    assert body["reasoning_effort"] == "low"
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    _, plain = request_body(GenerationRequest(model="m", messages=quiet.messages), "m")
    assert "reasoning_effort" not in plain and "chat_template_kwargs" not in plain
