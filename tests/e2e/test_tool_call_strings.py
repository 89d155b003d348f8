"""A `</tool_call>` the model writes inside an argument's JSON string (the call grammar
allows any text there) is part of the string, on every surface (issue #21).

Whatever the model writes, a reply that says it made calls has calls whose arguments are
JSON valid against their tool's schema, and no call markup among its text; only a call
cut off by max_tokens may not parse, and then the reply says it was cut.

The real model writes the tag reliably when an earlier call of the conversation holds it
(it repeats that call when asked the same again), and on some seeds when a logit_bias
pushes the tag's tokens. Greedy replies to a fresh question are not enough: which one the
model picks among near-equal tokens depends on how much of the prompt the server found
in its cache, that is on the requests before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import ollama
import openai
import pydantic
import pytest

from hearth.engine.llama_cpp.model import LlamaModel
from tests.conftest import MODEL

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]

TAG = "</tool_call>"
CODE = {
    "type": "object",
    "properties": {"code": {"type": "string"}},
    "required": ["code"],
    "additionalProperties": False,
}
PYTHON = {"type": "function", "function": {"name": "python", "parameters": CODE}}
CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 24},  # short strings: calls end, not cut
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather in a city", "parameters": CITY},
}
SCHEMAS = {"python": CODE, "get_weather": CITY}
SYSTEM = "You are a coding assistant."
PRINT_TAG = "Print the string '</tool_call>' in Python."


def check(finish: str, calls: list[tuple[str, str]], text: str, where: object) -> None:
    """A reply whose calls were required: it made calls, every one of them JSON valid
    against its tool's schema unless the reply was cut, and no call markup in its text."""
    assert "<tool_call>" not in text and TAG not in text, (where, text, calls)
    assert calls, (where, finish, text)
    assert finish in {"tool_calls", "length"}, (where, finish, calls)
    for i, (name, arguments) in enumerate(calls):
        try:
            value = json.loads(arguments)
        except ValueError:
            cut = finish == "length" and i == len(calls) - 1
            assert cut, f"{where}: call {i} of {name} is not JSON ({finish}): {arguments!r}"
            continue
        jsonschema.validate(value, SCHEMAS[name])


def holds_tag(calls: list[tuple[str, str]]) -> bool:
    return any(TAG in json.dumps(json.loads(a), ensure_ascii=False) for _, a in calls)


def chat(client: openai.OpenAI, stream: bool, **body: Any) -> tuple[str, list, str]:
    """(finish_reason, [(name, arguments)], content) of one choice, streamed or not."""
    if not stream:
        choice = client.chat.completions.create(model=MODEL, **body).choices[0]
        calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
        return choice.finish_reason, calls, choice.message.content or ""
    finish, content, parts = "", "", []
    for chunk in client.chat.completions.create(model=MODEL, stream=True, **body):
        if not chunk.choices:
            continue
        c = chunk.choices[0]
        finish = c.finish_reason or finish
        content += c.delta.content or ""
        for piece in c.delta.tool_calls or []:
            if piece.id is not None:
                assert piece.index == len(parts) and piece.function and piece.function.name
                parts.append([piece.function.name, ""])
            parts[piece.index][1] += (piece.function and piece.function.arguments) or ""
    return finish, [(name, args) for name, args in parts], content


def required(messages: list[dict], tools: list[dict], **extra: Any) -> dict[str, Any]:
    return {
        "messages": messages, "tools": tools, "tool_choice": "required",
        "parallel_tool_calls": False, **extra,
    }  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_greedy_code_example(client: openai.OpenAI, stream: bool) -> None:
    """The request of the issue. With one cache state the model answered it with
    `{"code": "def my_function(){return 10;}}</tool_call>  # returns: {" }}` (the call
    was split at the tag); with others it writes no tag at all, so this one can pass
    without the fix; the tests below make the model write the tag."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Write an example"},
    ]
    body = required(messages, [PYTHON], temperature=0, max_tokens=512, extra_body={"top_k": 1})
    finish, calls, content = chat(client, stream, **body)
    check(finish, calls, content, ("stream" if stream else "whole", finish))
    # One call (parallel_tool_calls is off). Under some cache states the greedy model
    # writes code until max_tokens ("length", the call cut: check() allows only that).
    assert len(calls) == 1


# An earlier call whose code prints the tag, in each surface's own form.
EARLIER = json.dumps({"code": "print('</tool_call>')"})


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_from_the_history_repeated(client: openai.OpenAI, stream: bool) -> None:
    earlier = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "python", "arguments": EARLIER},
    }
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": PRINT_TAG},
        {"role": "assistant", "tool_calls": [earlier]},
        {"role": "tool", "tool_call_id": "call_1", "content": "</tool_call>"},
        {"role": "user", "content": PRINT_TAG},
    ]
    body = required(messages, [PYTHON], temperature=0, max_tokens=200)
    finish, calls, content = chat(client, stream, **body)
    check(finish, calls, content, ("stream" if stream else "whole", finish))
    # One call (parallel_tool_calls is off). Under some cache states the greedy model
    # writes code until max_tokens ("length", the call cut: check() allows only that).
    assert len(calls) == 1
    assert holds_tag(calls), f"the model no longer writes the tag, so this tests nothing: {calls}"


@pytest.fixture(scope="module")
def tag_bias(model_path: Path) -> dict[str, int]:
    """A push on every token of `</tool_call>`, as the server's tokenizer splits it."""
    model = LlamaModel(model_path)
    try:
        tokens = model.tokenize(TAG, add_special=False, parse_special=True)
    finally:
        model.close()
    assert len(tokens) > 1
    return {str(t): 10 for t in tokens}


def test_sampled_calls_pushed_towards_the_tag(
    client: openai.OpenAI, tag_bias: dict[str, int]
) -> None:
    """At temperature 1 the push makes some seeds write the tag inside the city's string
    (at most 24 characters, so calls end well before max_tokens)."""
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    for seed in range(8):
        body = required(ask, [WEATHER], temperature=1, seed=seed, max_tokens=120)
        finish, calls, content = chat(client, False, logit_bias=tag_bias, **body)
        check(finish, calls, content, ("seed", seed, finish))
        assert len(calls) == 1, (seed, calls)


RESPONSES_TOOL = {"type": "function", "name": "python", "parameters": CODE}


def test_responses(client: openai.OpenAI) -> None:
    """Responses takes neither a seed nor a logit_bias: the earlier call repeated,
    whole and streamed (its events, and the response they end with)."""
    history = [
        {"role": "user", "content": PRINT_TAG},
        {"type": "function_call", "call_id": "call_1", "name": "python", "arguments": EARLIER},
        {"type": "function_call_output", "call_id": "call_1", "output": "</tool_call>"},
        {"role": "user", "content": PRINT_TAG},
    ]
    body: dict[str, Any] = {
        "model": MODEL, "instructions": SYSTEM, "input": history, "tools": [RESPONSES_TOOL],
        "tool_choice": "required", "parallel_tool_calls": False, "temperature": 0,
        "max_output_tokens": 200,
    }  # fmt: skip
    whole = client.responses.create(**body)
    events = list(client.responses.create(**body, stream=True))
    streamed = events[-1].response
    for where, r in (("whole", whole), ("stream", streamed)):
        calls = [(i.name, i.arguments) for i in r.output if i.type == "function_call"]
        text = "".join(
            part.text for i in r.output if i.type == "message" for part in i.content
            if part.type == "output_text"
        )  # fmt: skip
        finish = {"completed": "tool_calls", "incomplete": "length"}.get(r.status, r.status)
        check(finish, calls, text, (where, r.status))
        assert r.status == "completed" and holds_tag(calls), (where, calls)
    names = {
        e.item.id: e.item.name
        for e in events
        if e.type == "response.output_item.added" and e.item.type == "function_call"
    }
    done = [
        (names[e.item_id], e.arguments)
        for e in events
        if e.type == "response.function_call_arguments.done"
    ]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    check("tool_calls", done, deltas, ("stream events", [e.type for e in events]))


def test_assistants_run(client: openai.OpenAI) -> None:
    """A run with a required call: what it asks for must be calls the client can run,
    and the thread gets no message made of the call's remains. A thread's messages are
    text, so the earlier call is an assistant message in the model's own call format."""
    earlier = (
        f"<tool_call>\n{json.dumps({'name': 'python', 'arguments': json.loads(EARLIER)})}\n{TAG}"
    )
    messages = [
        {"role": "user", "content": PRINT_TAG},
        {"role": "assistant", "content": earlier},
        {"role": "user", "content": PRINT_TAG},
    ]
    assistant = client.beta.assistants.create(model=MODEL, instructions=SYSTEM, temperature=0)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": messages}, tools=[PYTHON],
        tool_choice="required", parallel_tool_calls=False, max_completion_tokens=200,
    )  # fmt: skip
    assert run.status == "requires_action", (run.status, run.last_error)
    assert run.required_action is not None
    calls = [
        (c.function.name, c.function.arguments)
        for c in run.required_action.submit_tool_outputs.tool_calls
    ]
    said = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    text = "".join(part.text.value for m in said for part in m.content if part.type == "text")
    check("tool_calls", calls, text, ("run", run.status))
    assert holds_tag(calls), calls


def ollama_calls(parts: list[ollama.ChatResponse]) -> tuple[str, list, str]:
    calls = [
        (c.function.name, json.dumps(dict(c.function.arguments)))
        for part in parts
        for c in part.message.tool_calls or []
    ]
    content = "".join(part.message.content or "" for part in parts)
    return parts[-1].done_reason or "", calls, content


@pytest.mark.parametrize("stream", [False, True])
def test_ollama(ollama_client: ollama.Client, stream: bool) -> None:
    """Ollama has no tool_choice and no logit_bias, and the model never calls on its own
    at first; but it repeats the call it made earlier in the conversation, tag and all."""
    earlier = {"function": {"name": "python", "arguments": json.loads(EARLIER)}}
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": PRINT_TAG},
        {"role": "assistant", "content": "", "tool_calls": [earlier]},
        {"role": "user", "content": PRINT_TAG},
    ]
    options = {"temperature": 0, "num_predict": 100}
    try:
        reply = ollama_client.chat(
            model=MODEL, messages=messages, tools=[PYTHON], options=options, stream=stream
        )
        parts = list(reply) if stream else [reply]
    except pydantic.ValidationError as exc:  # the client reads arguments as an object
        pytest.fail(f"the ollama client cannot read the reply's calls: {exc}")
    done, calls, content = ollama_calls(parts)  # type: ignore[arg-type]
    finish = {"stop": "tool_calls", "length": "length"}.get(done, done)
    check(finish, calls, content, ("stream" if stream else "whole", done))
    assert holds_tag(calls), calls
