"""Bad input to the Responses and Conversations APIs: a clear 4xx naming the param, in the
OpenAI shape, and nothing stored is lost or changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def http(stored_client: openai.OpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(stored_client.base_url), timeout=120) as client:
        yield client


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"role": "user", "content": "a"}, {"type": "bogus"}]}, "input[1].type"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": ["text"]}, "input[0]"),
        ({"input": []}, "input"),
        ({"input": "x", "temperature": 3}, "temperature"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "x", "tool_choice": "required"}, "tool_choice"),
        (
            {
                "input": "x",
                "tools": [{"type": "function", "name": "f"}],
                "tool_choice": {"type": "function", "name": "g"},
            },
            "tool_choice",
        ),
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
            "text.format.schema",
        ),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "x", "text": {"format": "json"}}, "text.format"),
        ({"input": "x", "metadata": {"k": 1}}, "metadata.k"),
        ({"input": "x", "background": True, "store": False}, "background"),
        ({"input": "x", "truncation": "middle"}, "truncation"),
        ({"input": "x", "include": ["message.output_text.logprobs", "x"]}, "include[1]"),
        ({"input": "x", "top_logprobs": 21}, "top_logprobs"),
    ],
)
def test_malformed_requests_name_the_param(
    http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    err = _error(http.post("responses", json={"model": MODEL, **body}), 400)
    assert err["param"] == param and err["type"] == "invalid_request_error"


def test_unknown_ids_are_404(stored_client: openai.OpenAI, http: httpx.Client) -> None:
    client = stored_client
    for call in (
        lambda: client.responses.retrieve("resp_nope"),
        lambda: client.responses.cancel("resp_nope"),
        lambda: client.responses.delete("resp_nope"),
        lambda: client.responses.input_items.list("resp_nope"),
        lambda: client.conversations.retrieve("conv_nope"),
        lambda: client.conversations.update("conv_nope", metadata={}),
        lambda: client.conversations.delete("conv_nope"),
        lambda: client.conversations.items.list("conv_nope"),
        lambda: client.conversations.items.create(
            "conv_nope", items=[{"role": "user", "content": "x"}]
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    err = _error(http.get("responses/resp_nope", params={"stream": "true"}), 404)
    assert err["param"] == "response_id"
    err = _error(http.post("responses", json={"model": "nope", "input": "x"}), 404)
    assert err["param"] == "model"
    body = {"model": MODEL, "input": "x", "conversation": "conv_nope"}
    assert _error(http.post("responses", json=body), 404)["param"] == "conversation"


def test_previous_response_that_is_gone_or_unstored(stored_client: openai.OpenAI) -> None:
    client = stored_client
    kept = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
    unstored = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4, store=False)
    assert unstored.status in {"completed", "incomplete"}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    deleted = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
    client.responses.delete(deleted.id)
    for gone in ("resp_nope", unstored.id, deleted.id):
        with pytest.raises(openai.NotFoundError) as err:
            client.responses.create(
                model=MODEL, input="Again", previous_response_id=gone, max_output_tokens=4
            )
        assert err.value.body["param"] == "previous_response_id"  # type: ignore[index]
    conv = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(
            model=MODEL, input="x", previous_response_id=kept.id, conversation=conv.id
        )
    assert both.value.body["param"] == "conversation"  # type: ignore[index]
    assert client.responses.retrieve(kept.id).output_text == kept.output_text


def test_cancel_needs_a_running_background_response(stored_client: openai.OpenAI) -> None:
    client = stored_client
    plain = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(plain.id)
    done = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4, background=True)
    while client.responses.retrieve(done.id).status in {"queued", "in_progress"}:
        pass
    finished = client.responses.retrieve(done.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.cancel(done.id)
    assert finished.status in err.value.message
    assert client.responses.retrieve(done.id).status == finished.status


def test_context_too_long(stored_client: openai.OpenAI, http: httpx.Client) -> None:
    client = stored_client
    long_text = "bread " * 2600  # about 2,600 tokens: one fits the 4,096-token context
    conv = client.conversations.create(
        items=[
            {"role": "user", "content": long_text},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Tell me more."},
            {"role": "assistant", "content": "Bread is baked."},
        ]
    )
    body = {"model": MODEL, "input": long_text, "conversation": conv.id, "max_output_tokens": 4}
    err = _error(http.post("responses", json=body), 400)
    assert err["code"] == "context_length_exceeded"
    # With "auto" the oldest turn goes, and the rest fits.
    r = client.responses.create(
        model=MODEL, input=long_text, conversation=conv.id, max_output_tokens=4, truncation="auto"
    )
    assert r.truncation == "auto" and r.status in {"completed", "incomplete"}
    assert r.usage is not None and 2600 < r.usage.input_tokens < 4000
    items = client.conversations.items.list(conv.id, order="asc", limit=100).data
    assert len(items) == 6  # truncation shapes the prompt, never the stored conversation
    # A too-long input alone does not fit however much is dropped.
    body = {"model": MODEL, "input": "bread " * 5000, "truncation": "auto"}
    assert _error(http.post("responses", json=body), 400)["code"] == "context_length_exceeded"


def test_a_running_response_cannot_be_continued_yet(stored_client: openai.OpenAI) -> None:
    client = stored_client
    job = client.responses.create(
        model=MODEL, input="Write a long story.", max_output_tokens=400, background=True
    )
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="And then?", previous_response_id=job.id)
    assert err.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert client.responses.cancel(job.id).status == "cancelled"


def test_duplicate_item_ids_are_a_400_and_lose_nothing(
    stored_client: openai.OpenAI, http: httpx.Client
) -> None:
    conv = stored_client.conversations.create()
    r = stored_client.responses.create(
        model=MODEL, input="Say hi.", conversation=conv.id, max_output_tokens=4
    )
    reply = {
        "id": r.output[0].id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": r.output_text}],
    }
    # The reply passed back in with its id, next to the conversation that holds it.
    more = {"role": "user", "content": "more"}
    body = {"model": MODEL, "conversation": conv.id, "input": [reply, more]}
    assert _error(http.post("responses", json=body), 400)["param"] == "input[0].id"
    added = http.post(f"conversations/{conv.id}/items", json={"items": [reply]})
    assert _error(added, 400)["param"] == "items[0].id"
    twice = [{"id": "m1", "role": "user", "content": c} for c in ("a", "b")]
    assert _error(http.post("conversations", json={"items": twice}), 400)["param"] == "items[1].id"
    assert _error(http.post("responses", json={"model": MODEL, "input": twice}), 400)["param"] == (
        "input[1].id"
    )
    kept = stored_client.conversations.items.list(conv.id, order="asc").data
    assert [i.id for i in kept][1:] == [r.output[0].id]  # the one turn, whole
