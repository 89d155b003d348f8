"""The Anthropic Messages API with the real anthropic SDK against the bundled model."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import jsonschema
import pytest

from tests.conftest import MODEL, LiveServer
from tests.e2e.test_tool_calls import CITY

WEATHER = {"name": "get_weather", "description": "Weather in a city", "input_schema": CITY}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
SYSTEM = "You are a helpful assistant. Answer in one short sentence."


@pytest.fixture(scope="module")
def claude(live_server: LiveServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=live_server.url, api_key="unused", max_retries=0) as c:
        yield c


def test_create_answers_with_text(claude: anthropic.Anthropic) -> None:
    m = claude.messages.create(
        model=MODEL, max_tokens=40, system=SYSTEM, temperature=0, messages=ASK
    )
    assert m.id.startswith("msg_") and m.model == MODEL
    assert m.content[0].type == "text" and m.content[0].text.strip()
    assert m.stop_reason in {"end_turn", "max_tokens"}
    assert 0 < m.usage.output_tokens <= 40


def test_stream_text_matches_the_final_message(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL, max_tokens=30, temperature=0, system=SYSTEM, messages=ASK
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)
    assert final.usage.output_tokens > 0 and final.stop_reason in {"end_turn", "max_tokens"}
    plain = claude.messages.create(
        model=MODEL, max_tokens=30, temperature=0, system=SYSTEM, messages=ASK
    )
    assert plain.content[0].text == final.content[0].text  # type: ignore[union-attr]


def test_multi_turn_with_system_reuses_the_cached_prefix(claude: anthropic.Anthropic) -> None:
    history: list = [{"role": "user", "content": "Name a colour."}]
    first = claude.messages.create(
        model=MODEL, max_tokens=20, temperature=0, system=SYSTEM, messages=history
    )
    history += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "text", "text": "And another one?"}]},
    ]
    second = claude.messages.create(
        model=MODEL, max_tokens=20, temperature=0, system=SYSTEM, messages=history
    )
    assert second.content[0].type == "text" and second.content[0].text.strip()
    assert (second.usage.cache_read_input_tokens or 0) > 0
    counted = claude.messages.count_tokens(model=MODEL, system=SYSTEM, messages=history)
    assert counted.input_tokens == second.usage.input_tokens + second.usage.cache_read_input_tokens  # type: ignore[operator]


def test_stop_sequence_and_max_tokens(claude: anthropic.Anthropic) -> None:
    args = {"model": MODEL, "temperature": 0, "messages": ASK, "system": SYSTEM}
    whole = claude.messages.create(max_tokens=40, **args)  # type: ignore[arg-type]
    words = whole.content[0].text.split()  # type: ignore[union-attr]
    assert len(words) > 2
    stop = " " + words[2]
    cut = claude.messages.create(max_tokens=40, stop_sequences=["#never#", stop], **args)  # type: ignore[arg-type]
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", stop)
    assert stop not in cut.content[0].text  # type: ignore[union-attr]
    short = claude.messages.create(max_tokens=2, **args)  # type: ignore[arg-type]
    assert (short.stop_reason, short.usage.output_tokens) == ("max_tokens", 2)


def test_forced_tool_call_is_always_valid(claude: anthropic.Anthropic) -> None:
    for seed in range(20):
        m = claude.messages.create(
            model=MODEL, max_tokens=80, temperature=1.0, messages=ASK, tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"}, extra_body={"seed": seed},
        )  # fmt: skip
        assert m.stop_reason == "tool_use", seed
        uses = [b for b in m.content if b.type == "tool_use"]
        assert len(uses) == 1 and uses[0].name == "get_weather", seed
        assert uses[0].id.startswith("toolu_")
        jsonschema.validate(uses[0].input, CITY)


def test_a_tool_result_turn(claude: anthropic.Anthropic) -> None:
    call = claude.messages.create(
        model=MODEL, max_tokens=80, temperature=0, messages=ASK, tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "any"},
    )  # fmt: skip
    use = next(b for b in call.content if b.type == "tool_use")
    history = [
        *ASK,
        {"role": "assistant", "content": call.content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 24 degrees."}
            ],
        },
    ]
    answer = claude.messages.create(
        model=MODEL, max_tokens=40, temperature=0, messages=history, tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "none"},
    )  # fmt: skip
    assert [b.type for b in answer.content] == ["text"]
    assert answer.content[0].text.strip()  # type: ignore[union-attr]
    assert answer.stop_reason in {"end_turn", "max_tokens"}


def test_streamed_forced_call_arrives_as_input_json(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL, max_tokens=80, temperature=0, messages=ASK, tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:  # fmt: skip
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "input_json_delta" in kinds
    use = next(b for b in final.content if b.type == "tool_use")
    jsonschema.validate(use.input, CITY)
    assert final.stop_reason == "tool_use"


def test_count_tokens_with_tools_equals_the_prompt(claude: anthropic.Anthropic) -> None:
    args = {"model": MODEL, "system": SYSTEM, "messages": ASK, "tools": [WEATHER]}
    counted = claude.messages.count_tokens(**args)  # type: ignore[arg-type]
    m = claude.messages.create(max_tokens=5, tool_choice={"type": "auto"}, **args)  # type: ignore[arg-type]
    assert counted.input_tokens == m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0)
    bare = claude.messages.count_tokens(model=MODEL, system=SYSTEM, messages=ASK)  # type: ignore[arg-type]
    assert bare.input_tokens < counted.input_tokens  # the tools are part of the prompt


def test_unknown_model_and_bad_body(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="no-such-model", max_tokens=5, messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model=MODEL, max_tokens=5, messages=ASK, temperature=3)  # type: ignore[arg-type]


def test_models_list_in_anthropics_shape(claude: anthropic.Anthropic) -> None:
    page = claude.models.list()
    assert MODEL in [m.id for m in page.data]
    assert claude.models.retrieve(MODEL).type == "model"
