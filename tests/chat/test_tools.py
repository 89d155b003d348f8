"""Tools and tool turns in the prompt, for templates that know tools and those that don't."""

from __future__ import annotations

import json

import pytest

from hearth.chat.templates import CHATML, ChatTemplate
from hearth.chat.tools import check_tool_turns, template_messages, uses_tools
from hearth.chat.types import ChatMessage, Tool, ToolCall
from hearth.core.errors import InvalidRequest

WEATHER = Tool("get_weather", "Weather in a city", {"type": "object", "properties": {}})
CALL = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
TURNS = (
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Weather in Oslo?"),
    ChatMessage("assistant", None, tool_calls=(CALL,)),
    ChatMessage("tool", "-3 C and snowing", tool_call_id="call_1"),
    ChatMessage("tool", "wind 20 km/h", tool_call_id="call_1"),
)


def test_hermes_form_for_a_template_without_tools() -> None:
    out = template_messages(TURNS, (WEATHER,), native=False)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.\n\n")
    assert '"name": "get_weather"' in out[0]["content"] and "<tools>" in out[0]["content"]
    call = out[2]["content"]
    assert call.startswith("<tool_call>\n") and call.endswith("\n</tool_call>")
    assert json.loads(call.split("\n")[1]) == {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert out[3]["content"] == (
        "<tool_response>\n-3 C and snowing\n</tool_response>\n"
        "<tool_response>\nwind 20 km/h\n</tool_response>"
    )
    text = ChatTemplate(CHATML).render(out)
    assert "<tool_call>" in text and "<tool_response>" in text


def test_no_tools_no_system_prompt_added() -> None:
    out = template_messages((ChatMessage("user", "hi"),), (), native=False)
    assert out == [{"role": "user", "content": "hi"}]


def test_native_templates_get_calls_with_object_arguments() -> None:
    out = template_messages(TURNS, (WEATHER,), native=True)
    assert out[2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Oslo"},
    }
    assert out[3] == {"role": "tool", "content": "-3 C and snowing", "tool_call_id": "call_1"}


def test_uses_tools_reads_the_template() -> None:
    assert not uses_tools(CHATML)
    assert uses_tools("{% if tools %}{{ tools | tojson }}{% endif %}")


def test_a_tool_result_must_answer_an_earlier_call() -> None:
    check_tool_turns(TURNS)
    orphan = (ChatMessage("user", "hi"), ChatMessage("tool", "42", tool_call_id="call_9"))
    with pytest.raises(InvalidRequest) as info:
        check_tool_turns(orphan)
    assert info.value.param == "messages[1].tool_call_id"
    with pytest.raises(InvalidRequest):
        check_tool_turns((ChatMessage("tool", "42"),))
