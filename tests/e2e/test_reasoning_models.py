"""A reasoning model (the tests' tiny <think> model, Qwen3's template; its [THINK] twin
with Ministral 3 Reasoning's) behind a real server, read by the real clients: the thinking
apart from the answer on every surface."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import ollama
import openai
import pytest

from tests.conftest import LiveServer
from tests.engine.tiny_reasoner import ANSWER, REASONING, TinyReasoner

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client(reasoning_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=reasoning_server.url + "/v1", api_key="none", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def ollama_client(reasoning_server: LiveServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=reasoning_server.url) as c:
        yield c


def chat(client: openai.OpenAI, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {"model": "reasoner", "temperature": 0, "max_tokens": 40, **kw}
    return client.chat.completions.create(messages=USER, **args)  # type: ignore[call-overload]


# The think family (Qwen3's template) and the bracket family (Ministral 3 Reasoning's).
FAMILIES = pytest.mark.parametrize("model", ["reasoner", "ministral"])


@FAMILIES
def test_openai_chat_whole(client: openai.OpenAI, model: str) -> None:
    reply = chat(client, model=model)
    message = reply.choices[0].message
    assert message.content == ANSWER
    assert message.reasoning_content == REASONING  # type: ignore[attr-defined]
    assert message.reasoning == REASONING  # type: ignore[attr-defined]
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    # the block's tokens, markers included (the rest of the completion is the answer's)
    assert reply.usage.completion_tokens_details.reasoning_tokens == 6


@FAMILIES
def test_openai_chat_streamed(client: openai.OpenAI, model: str) -> None:
    reasoning = content = ""
    for chunk in chat(client, model=model, stream=True):
        for choice in chunk.choices:
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            content += choice.delta.content or ""
    assert (reasoning, content) == (REASONING, ANSWER)


def test_openai_reasoning_effort_none_turns_thinking_off(client: openai.OpenAI) -> None:
    message = chat(client, reasoning_effort="none").choices[0].message
    assert (message.content, getattr(message, "reasoning_content", None)) == (ANSWER, None)
    kwargs = {"chat_template_kwargs": {"enable_thinking": False}}
    message = chat(client, extra_body=kwargs).choices[0].message
    assert (message.content, getattr(message, "reasoning_content", None)) == (ANSWER, None)


def test_openai_budget_and_length(client: openai.OpenAI, tiny_reasoner: TinyReasoner) -> None:
    looping = {str(tiny_reasoner.id("</think>")): -100}
    reply = chat(client, logit_bias=looping, extra_body={"max_reasoning_tokens": 4})
    message = reply.choices[0].message
    assert (message.reasoning_content, message.content) == ("Let me think.", ANSWER)  # type: ignore[attr-defined]
    cut = chat(client, logit_bias=looping, max_tokens=8).choices[0]
    assert cut.finish_reason == "length" and cut.message.content == ""
    assert cut.message.reasoning_content.startswith("Let me think. think")  # type: ignore[attr-defined]


def test_openai_json_after_the_reasoning(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = chat(
        client,
        max_tokens=80,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    message = reply.choices[0].message
    assert message.reasoning_content == REASONING  # type: ignore[attr-defined]
    assert isinstance(json.loads(message.content or "")["ok"], bool)


def test_a_model_entry_can_pass_reasoning_through(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="plain", messages=USER, temperature=0)
    message = reply.choices[0].message
    assert message.content == f"<think>{REASONING}</think>\n\n{ANSWER}"
    assert getattr(message, "reasoning_content", None) is None


def test_ollama_chat_and_generate(ollama_client: ollama.Client) -> None:
    reply = ollama_client.chat(model="reasoner", messages=USER, think=True)
    assert (reply.message.thinking, reply.message.content) == (REASONING, ANSWER)
    thinking = content = ""
    for part in ollama_client.chat(model="reasoner", messages=USER, stream=True):
        thinking += part.message.thinking or ""
        content += part.message.content or ""
    assert (thinking, content) == (REASONING, ANSWER)
    generated = ollama_client.generate(model="reasoner", prompt="hi")
    assert (generated.thinking, generated.response) == (REASONING, ANSWER)
    off = ollama_client.chat(model="reasoner", messages=USER, think=False)
    assert (off.message.thinking, off.message.content) == (None, ANSWER)


def test_ollama_show_and_think_on_a_model_that_does_not_reason(
    ollama_client: ollama.Client,
) -> None:
    assert "thinking" in (ollama_client.show("reasoner").capabilities or [])
    assert "thinking" not in (ollama_client.show("plain").capabilities or [])
    plain = ollama_client.chat(model="plain", messages=USER, think=True)
    assert plain.message.thinking is None
    assert plain.message.content == f"<think>{REASONING}</think>\n\n{ANSWER}"


def test_a_bad_think_value_is_a_400(reasoning_server: LiveServer) -> None:
    body = {"model": "reasoner", "messages": USER, "think": "loud", "stream": False}
    reply = httpx.post(reasoning_server.url + "/api/chat", json=body)
    assert reply.status_code == 400 and "think" in reply.json()["error"]


def test_responses_whole_and_streamed(client: openai.OpenAI) -> None:
    reply = client.responses.create(model="reasoner", input="hi", temperature=0)
    kinds = [item.type for item in reply.output]
    assert kinds == ["reasoning", "message"]
    reasoning = reply.output[0]
    assert reasoning.content is not None and reasoning.content[0].text == REASONING  # type: ignore[union-attr]
    assert reply.output_text == ANSWER
    assert reply.usage is not None and reply.usage.output_tokens_details.reasoning_tokens == 6
    deltas = [
        e.delta
        for e in client.responses.create(model="reasoner", input="hi", stream=True)
        if e.type == "response.reasoning_text.delta"
    ]
    assert "".join(deltas) == REASONING
    # The reasoning item goes back as input, as clients send a turn's output.
    follow = client.responses.create(
        model="reasoner",
        input=[*[i.model_dump(exclude_none=True) for i in reply.output], USER[0]],
        reasoning={"effort": "none"},
    )
    assert [i.type for i in follow.output] == ["message"] and follow.output_text == ANSWER
    assert follow.reasoning is not None and follow.reasoning.effort == "none"


def test_anthropic_thinking_blocks(reasoning_server: LiveServer) -> None:
    anthropic = pytest.importorskip("anthropic")
    with anthropic.Anthropic(
        base_url=reasoning_server.url, api_key="none", max_retries=0
    ) as claude:
        reply = claude.messages.create(model="reasoner", max_tokens=40, messages=USER)
        assert [b.type for b in reply.content] == ["thinking", "text"]
        assert (reply.content[0].thinking, reply.content[1].text) == (REASONING, ANSWER)
        with claude.messages.stream(model="reasoner", max_tokens=40, messages=USER) as stream:
            thinking = "".join(
                e.delta.thinking
                for e in stream
                if e.type == "content_block_delta" and e.delta.type == "thinking_delta"
            )
            final = stream.get_final_message()
        assert thinking == REASONING and final.content[1].text == ANSWER  # type: ignore[union-attr]
        off = claude.messages.create(
            model="reasoner", max_tokens=40, messages=USER, thinking={"type": "disabled"}
        )
        assert [b.type for b in off.content] == ["text"]


async def test_websocket_reasoning_frames(reasoning_server: LiveServer) -> None:
    from tests.e2e.ws_client import next_frame, open_socket, send

    async with open_socket(reasoning_server) as ws:
        await send(ws, {"type": "chat", "id": "r1", "model": "reasoner", "messages": USER})
        frames = []
        while not frames or frames[-1]["type"] not in ("done", "error"):
            frames.append(await next_frame(ws))
    thinking = "".join(f["content"] for f in frames if f["type"] == "reasoning")
    content = "".join(f["content"] for f in frames if f["type"] == "delta")
    assert (thinking, content) == (REASONING, ANSWER)
    assert frames[-1]["reasoning_content"] == REASONING


@pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")
def test_assistants_stream_the_reasoning_apart(client: openai.OpenAI) -> None:
    beta = client.beta
    assistant = beta.assistants.create(model="reasoner", temperature=0)
    thread = beta.threads.create(messages=USER)  # type: ignore[list-item]
    thinking = ""
    with beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                thinking += getattr(event.data.delta, "reasoning_content", None) or ""
    assert thinking == REASONING
    messages = beta.threads.messages.list(thread_id=thread.id).data
    (message,) = [m for m in messages if m.role == "assistant"]
    assert message.content[0].text.value == ANSWER  # type: ignore[union-attr]


def test_chat_template_kwargs_cannot_set_what_hearth_sets(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        chat(client, extra_body={"chat_template_kwargs": {"add_generation_prompt": False}})
    assert err.value.body["param"] == "chat_template_kwargs"  # type: ignore[index]
