"""The OpenAI surface's reply bodies: documented in /openapi.json, every reply valid
against what is documented, with the fields OpenAI sends (and none it does not); and an
embedding stops when its client leaves, on both surfaces, counted in /metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from hearth.api.openai.chat import chat_completion
from hearth.api.openai.completions import text_completion
from hearth.api.openai.replies import json_reply
from hearth.engine.fake import FakeBackend
from hearth.engine.types import EmbeddingResult, TokenLogprob, ToolCall, TopLogprob, Usage
from hearth.services.generation import ChoiceResult
from tests.conftest import LiveServer, make_settings, registry_of
from tests.e2e.test_backpressure import wait_for
from tests.prometheus import delta, scrape

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
ROUTES = {
    "/v1/chat/completions": "ChatCompletion",
    "/v1/completions": "Completion",
    "/v1/embeddings": "CreateEmbeddingResponse",
}


class Hanging(FakeBackend):
    """Embeds until cancelled: the only way such a request ends is its client leaving."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def embed(
        self, inputs: Sequence[str | Sequence[int]], *, truncate: bool = False
    ) -> EmbeddingResult:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("never finishes")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    registry = registry_of(
        FakeBackend("ok", "one two three"), FakeBackend("caller", CALL), Hanging("hangs")
    )
    live = LiveServer(make_settings(Path(tmp_path_factory.mktemp("replies"))), registry).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def spec(server: LiveServer) -> dict[str, Any]:
    reply = httpx.get(f"{server.url}/openapi.json")
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def documented(spec: dict[str, Any], path: str) -> Draft202012Validator:
    """The schema /openapi.json gives for the route's 200 reply (OpenAPI 3.1's schemas
    are JSON Schema 2020-12; their refs point into `components`)."""
    content = spec["paths"][path]["post"]["responses"]["200"]["content"]
    schema = content["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": spec["components"]})


def post(server: LiveServer, path: str, **body: Any) -> dict[str, Any]:
    reply = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    out: dict[str, Any] = reply.json()
    return out


def test_openapi_documents_the_three_reply_models(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for path, name in ROUTES.items():
        content = spec["paths"][path]["post"]["responses"]["200"]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
        assert {"object", "model", "usage"} <= set(schemas[name]["required"])
    message = schemas["ChatCompletionMessage"]
    assert "tool_calls" in message["properties"] and "tool_calls" not in message["required"]
    assert "refusal" in message["required"]


def test_replies_are_valid_against_the_documented_schemas(
    server: LiveServer, spec: dict[str, Any]
) -> None:
    messages = [{"role": "user", "content": "hi"}]
    chat = post(server, "/v1/chat/completions", model="ok", messages=messages, n=2)
    called = post(server, "/v1/chat/completions", model="caller", messages=messages, tools=TOOLS)
    text = post(server, "/v1/completions", model="ok", prompt=["a", "b"], echo=True)
    floats = post(server, "/v1/embeddings", model="ok", input=["a b", "c"])
    packed = post(server, "/v1/embeddings", model="ok", input="a", encoding_format="base64")
    replies = {
        "/v1/chat/completions": [chat, called],
        "/v1/completions": [text],
        "/v1/embeddings": [floats, packed],
    }
    for path, bodies in replies.items():
        validator = documented(spec, path)
        for body in bodies:
            assert not list(validator.iter_errors(body)), body
        # The schema is no formality: a reply without its usage is not valid.
        assert not validator.is_valid({k: v for k, v in bodies[0].items() if k != "usage"})

    # What OpenAI sends: refusal null, no tool_calls without calls; the calls when made.
    plain = chat["choices"][0]["message"]
    assert plain == {
        "role": "assistant",
        "content": "one two three",
        "refusal": None,
        "annotations": [],
    }
    assert chat["choices"][1]["logprobs"] is None and chat["system_fingerprint"]
    call = called["choices"][0]
    assert call["finish_reason"] == "tool_calls" and call["message"]["content"] is None
    assert call["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert [c["text"] for c in text["choices"]] == ["aone two three", "bone two three"]
    assert isinstance(packed["data"][0]["embedding"], str)
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_logprobs_and_tool_calls_are_assembled_in_the_documented_shapes(
    spec: dict[str, Any],
) -> None:
    top = (TopLogprob("Hi", b"Hi", -0.5), TopLogprob("Hey", b"Hey", -1.5))
    result = ChoiceResult(
        index=0,
        text="Hi",
        finish_reason="tool_calls",
        logprobs=[TokenLogprob("Hi", b"Hi", -0.5, top)],
        tool_calls=[ToolCall("call_1", "f", "{}")],
    )
    meta = {"id": "chatcmpl-1", "created": 1, "model": "m", "system_fingerprint": "fp"}
    usage = Usage(prompt_tokens=3, completion_tokens=1, cached_tokens=2)
    body = json_reply(chat_completion(meta, [result], usage, wants_logprobs=True)).body
    chat = httpx.Response(200, content=body).json()
    assert not list(documented(spec, "/v1/chat/completions").iter_errors(chat))
    entry = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}
    assert chat["choices"][0]["logprobs"] == {
        "content": [
            {
                **entry,
                "top_logprobs": [entry, {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121]}],
            }
        ],
        "refusal": None,
    }
    assert chat["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert chat["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "total_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }

    result.finish_reason = "length"
    meta = {**meta, "id": "cmpl-1", "object": "text_completion"}
    body = json_reply(text_completion(meta, [result], usage, ["> "], wants_logprobs=True)).body
    text = httpx.Response(200, content=body).json()
    assert not list(documented(spec, "/v1/completions").iter_errors(text))
    assert text["choices"][0] == {
        "index": 0,
        "text": "> Hi",
        "logprobs": {
            "tokens": ["Hi"],
            "token_logprobs": [-0.5],
            "top_logprobs": [{"Hi": -0.5, "Hey": -1.5}],
            "text_offset": [0],
        },
        "finish_reason": "length",
    }


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embed"])
def test_a_client_that_leaves_cancels_its_embedding(server: LiveServer, path: str) -> None:
    before = scrape(server.url)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}{path}", json={"model": "hangs", "input": "hi"}, timeout=1.0)
    backend = server.state.registry.loaded("hangs")
    assert isinstance(backend, Hanging) and backend.started.is_set()
    assert backend.cancelled.wait(10), "the embedding went on after its client left"
    backend.started.clear()
    backend.cancelled.clear()
    http = {"method": "POST", "route": path, "status": "499"}

    def counted() -> bool:
        after = scrape(server.url)
        name = "hearth_embedding_requests_total"
        return (
            delta(before, after, name, model="hangs", outcome="cancelled") == 1
            and delta(before, after, "hearth_http_requests_total", **http) == 1
        )

    assert wait_for(counted, 10)
