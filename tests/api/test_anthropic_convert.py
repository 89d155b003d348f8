"""Anthropic Messages bodies → the engine's request, and results → Anthropic's message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from hearth.api.anthropic.convert import generation_request, message, stop_reason, usage
from hearth.api.anthropic.models import model_info, model_page
from hearth.api.anthropic.schemas import MessageCountRequest, MessageRequest
from hearth.core.errors import InvalidRequest
from hearth.engine.types import ChatMessage, ToolCall, Usage
from hearth.services.generation import ChoiceResult

TOOL = {"name": "add", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}


def _request(**body: Any) -> MessageRequest:
    return MessageRequest.model_validate({"model": "m", "max_tokens": 16, **body})


def test_text_system_and_sampling() -> None:
    req = generation_request(
        _request(
            system=[{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {}}]},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"},
            ],
            temperature=0.2,
            top_k=5,
            stop_sequences=["END"],
            metadata={"user_id": "u1"},
            service_tier="auto",  # ignored
        )
    )
    assert req.messages == (
        ChatMessage("system", "One.\nTwo."),
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "hello"),
        ChatMessage("user", "again"),
    )
    assert (req.sampling.temperature, req.sampling.top_p, req.sampling.top_k) == (0.2, 1.0, 5)
    assert (req.stop, req.max_tokens) == (("END",), 16)


def test_thinking_blocks_are_the_turns_reasoning_and_the_param_accepted() -> None:
    req = generation_request(
        _request(
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "redacted_thinking", "data": "x"},
                        {"type": "text", "text": "a"},
                    ],
                },
            ],
        )
    )
    # The template shows an earlier turn's reasoning or not; a redacted one has no text.
    assert req.messages is not None
    assert req.messages[-1] == ChatMessage("assistant", "a", reasoning="hmm")


def test_tool_use_and_results_become_calls_and_tool_messages() -> None:
    req = generation_request(
        _request(
            tools=[TOOL],
            messages=[
                {"role": "user", "content": "add"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Calling."},
                        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [{"type": "text", "text": "2"}],
                        },
                        {"type": "text", "text": "and?"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_2", "name": "add", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "is_error": True,
                            "content": "bad",
                        }
                    ],
                },
            ],
        )
    )
    assert req.messages is not None
    assert req.messages[1] == ChatMessage(
        "assistant", "Calling.", tool_calls=(ToolCall("toolu_1", "add", '{"a": 1}'),)
    )
    assert req.messages[2] == ChatMessage("tool", "2", tool_call_id="toolu_1")
    assert req.messages[3] == ChatMessage("user", "and?")
    assert req.messages[-1] == ChatMessage("tool", "Error: bad", tool_call_id="toolu_2")
    assert [t.name for t in req.tools] == ["add"] and req.tools[0].parameters == TOOL[
        "input_schema"
    ]


@pytest.mark.parametrize(
    ("choice", "mode", "name", "parallel"),
    [
        (None, "auto", None, True),
        ({"type": "auto"}, "auto", None, True),
        ({"type": "none"}, "none", None, True),
        ({"type": "any"}, "required", None, True),
        (
            {"type": "tool", "name": "add", "disable_parallel_tool_use": True},
            "required",
            "add",
            False,
        ),
    ],
)
def test_tool_choice(choice: Any, mode: str, name: str | None, parallel: bool) -> None:
    body: dict[str, Any] = {"tools": [TOOL], "messages": [{"role": "user", "content": "x"}]}
    if choice is not None:
        body["tool_choice"] = choice
    req = generation_request(_request(**body))
    assert (req.tool_choice, req.tool_name, req.parallel_tool_calls) == (mode, name, parallel)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"tool_choice": {"type": "tool", "name": "sub"}, "tools": [TOOL]},
            "no function named 'sub'",
        ),
        ({"tool_choice": {"type": "any"}}, "only allowed when 'tools'"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "'document' are not supported",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "t", "name": "a", "input": {}}],
                    }
                ]
            },
            "tool_use belongs in assistant turns",
        ),
    ],
)
def test_requests_that_cannot_be_served_are_refused(body: dict[str, Any], words: str) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], **body}
    with pytest.raises(InvalidRequest, match=words):
        generation_request(_request(**body))


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "system", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
        {"messages": [], "temperature": 2},
        {"messages": [], "tool_choice": {"type": "tool"}},
        {"messages": [], "max_tokens": 0},
    ],
)
def test_bodies_outside_the_api_fail_validation(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _request(**body)


def test_count_request_needs_no_max_tokens() -> None:
    body = MessageCountRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )
    req = generation_request(body)
    assert req.max_tokens is None and req.messages == (ChatMessage("user", "x"),)


@pytest.mark.parametrize(
    ("reason", "stop", "wire"),
    [
        ("stop", None, "end_turn"),
        ("stop", "END", "stop_sequence"),
        ("length", None, "max_tokens"),
        ("tool_calls", None, "tool_use"),
    ],
)
def test_stop_reasons(reason: Any, stop: str | None, wire: str) -> None:
    assert stop_reason(reason, stop) == wire


def test_usage_counts_cached_tokens_apart() -> None:
    assert usage(Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=60)) == {
        "input_tokens": 40,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
    }


def test_message_with_calls_drops_whitespace_text() -> None:
    result = ChoiceResult(
        index=0,
        text="\n",
        finish_reason="tool_calls",
        tool_calls=[ToolCall("toolu_9", "add", json.dumps({"a": 2}))],
    )
    body = message("msg_1", "m", result, Usage(3, 4))
    assert body["content"] == [
        {"type": "tool_use", "id": "toolu_9", "name": "add", "input": {"a": 2}}
    ]
    assert (body["stop_reason"], body["stop_sequence"]) == ("tool_use", None)
    plain = message("msg_2", "m", ChoiceResult(index=0, text="", finish_reason="stop"), Usage(3, 0))
    assert plain["content"] == [{"type": "text", "text": ""}]


def test_model_pages() -> None:
    models = [model_info(f"m{i}", 0) for i in range(5)]
    assert models[0]["created_at"] == "1970-01-01T00:00:00Z"
    first = model_page(models, limit=2)
    assert (first["first_id"], first["last_id"], first["has_more"]) == ("m0", "m1", True)
    last = model_page(models, after_id="m2", limit=5)
    assert ([m["id"] for m in last["data"]], last["has_more"]) == (["m3", "m4"], False)
    back = model_page(models, before_id="m3", limit=2)
    assert ([m["id"] for m in back["data"]], back["has_more"]) == (["m1", "m2"], True)
    with pytest.raises(InvalidRequest):
        model_page(models, after_id="gone")
