"""services/assistants/params.py: the Assistants API's requests as typed params."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from hearth.core.errors import InvalidRequest
from hearth.services.assistants.params import (
    AssistantParams,
    MessageParams,
    RunParams,
    ThreadRunParams,
    check_tools,
    check_truncation,
    response_grammar,
)


def refused_at(model: type[BaseModel], body: dict[str, Any]) -> tuple[Any, ...]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return info.value.errors()[0]["loc"]


def test_a_modify_knows_which_fields_were_sent() -> None:
    body = AssistantParams.model_validate({"name": None, "top_p": 0.5, "unknown": 1})
    assert body.model_fields_set == {"name", "top_p"}  # null sent clears; unknown ignored
    assert (body.instructions, body.tools, body.response_format) == (None, None, None)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"temperature": 2.5}, ("temperature",)),
        ({"top_p": -0.1}, ("top_p",)),
        ({"name": "n" * 257}, ("name",)),
        ({"metadata": ["k"]}, ("metadata",)),
    ],
)
def test_an_assistants_types_and_ranges(body: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert refused_at(AssistantParams, body) == loc


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ("assistant_id",)),
        ({"assistant_id": "a", "max_completion_tokens": 0}, ("max_completion_tokens",)),
        ({"assistant_id": "a", "truncation_strategy": "auto"}, ("truncation_strategy",)),
        # Messages nested in a run or a thread are typed as a message posted alone is.
        ({"assistant_id": "a", "additional_messages": ["hi"]}, ("additional_messages", 0)),
        (
            {"assistant_id": "a", "additional_messages": [{"content": "x"}]},
            ("additional_messages", 0, "role"),
        ),
    ],
)
def test_a_runs_types_and_ranges(body: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert refused_at(RunParams, body) == loc


def test_a_new_thread_and_run_types_the_thread_and_its_messages() -> None:
    body = ThreadRunParams.model_validate(
        {
            "assistant_id": "asst_1",
            "thread": {"messages": [{"role": "user", "content": "hi", "metadata": {"a": "b"}}]},
            "temperature": 0,
        }
    )
    assert body.thread is not None and body.thread.messages is not None
    assert body.thread.messages[0] == MessageParams(role="user", content="hi", metadata={"a": "b"})
    assert body.model_dump(include={"temperature", "model"}, exclude_none=True) == {
        "temperature": 0
    }
    loc = refused_at(ThreadRunParams, {"assistant_id": "a", "thread": {"messages": [{}]}})
    assert loc == ("thread", "messages", 0, "role")


def test_tools_are_shown_back_as_functions_and_hosted_ones_refused() -> None:
    function = {"name": "f", "parameters": {"type": "object"}, "strict": True}
    assert check_tools([{"type": "function", "function": function}]) == [
        {"type": "function", "function": function}
    ]
    assert check_tools(None) == []
    with pytest.raises(InvalidRequest) as info:
        check_tools([{"type": "function", "function": function}, {"type": "file_search"}])
    assert info.value.param == "tools[1].type"


def test_truncation_and_response_format() -> None:
    assert check_truncation(None) == {"type": "auto", "last_messages": None}
    assert check_truncation({"type": "last_messages", "last_messages": 2})["last_messages"] == 2
    with pytest.raises(InvalidRequest) as info:
        check_truncation({"type": "last_messages", "last_messages": True})
    assert info.value.param == "truncation_strategy.last_messages"
    assert response_grammar("auto") is None
    with pytest.raises(InvalidRequest) as info:
        response_grammar({"type": "yaml"})
    assert info.value.param == "response_format.type"
