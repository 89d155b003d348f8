"""Every bad input of the Ollama surface, as the ollama client (or a raw client) sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from hearth.core.errors import Overloaded
from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of

HI = [{"role": "user", "content": "hi"}]
FEW = {"num_predict": 2}


def status_and_error(call) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ollama.ResponseError) as info:
        call()
    assert isinstance(info.value.error, str)
    return info.value.status_code, info.value.error


def test_unknown_model_is_404_everywhere(ollama_client: ollama.Client) -> None:
    calls = [
        lambda: ollama_client.chat(model="nope", messages=HI, stream=False),
        lambda: ollama_client.generate(model="nope", prompt="hi"),
        lambda: list(ollama_client.generate(model="nope", prompt="hi", stream=True)),
        lambda: ollama_client.embed(model="nope", input="hi"),
        lambda: ollama_client.embeddings(model="nope", prompt="hi"),
        lambda: ollama_client.show("nope"),
    ]
    for call in calls:
        assert status_and_error(call) == (404, 'model "nope" not found, try pulling it first')


def test_a_file_path_is_not_a_model(ollama_client: ollama.Client, model_path: Path) -> None:
    status, _ = status_and_error(lambda: ollama_client.generate(model=str(model_path), prompt="x"))
    assert status == 404


def test_images_are_refused(ollama_client: ollama.Client) -> None:
    image = b"\x89PNG not really"
    for call in (
        lambda: ollama_client.chat(
            model=MODEL, messages=[{"role": "user", "content": "what?", "images": [image]}]
        ),
        lambda: ollama_client.generate(model=MODEL, prompt="what?", images=[image]),
    ):
        assert status_and_error(call) == (400, "this model does not accept images")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"temperature": "hot"}, "options.temperature"),
        ({"num_predict": "ten"}, "options.num_predict"),
        ({"top_k": 2.5}, "options.top_k"),
        ({"seed": True}, "options.seed"),
        ({"stop": 5}, "options.stop"),
        ({"temperature": -1}, "options.temperature"),
        ({"top_p": 1.5}, "options.top_p"),
    ],
)
def test_bad_options_are_400(
    ollama_client: ollama.Client, options: dict[str, object], name: str
) -> None:
    status, error = status_and_error(
        lambda: ollama_client.generate(model=MODEL, prompt="hi", options=options)
    )
    assert status == 400
    assert name in error


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompt": "hi", "format": "yaml"}, "format"),
        ({"prompt": "hi", "format": {"type": "object", "minProperties": 2}}, "minProperties"),
        ({"prompt": "hi", "suffix": "return x"}, "suffix"),
        ({"prompt": "hi", "template": "{{ .Prompt }}"}, "template"),
        ({"prompt": "hi", "context": [1, 2, 3]}, "context"),
        ({"prompt": "hi", "raw": True, "system": "Be brief."}, "raw mode"),
        ({"prompt": "hi", "top_logprobs": 21}, "top_logprobs"),
        ({"prompt": 5}, "prompt"),
    ],
)
def test_bad_generate_bodies_are_400(
    live_server: LiveServer, body: dict[str, object], words: str
) -> None:
    r = httpx.post(f"{live_server.url}/api/generate", json={"model": MODEL, **body}, timeout=30)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and words in r.json()["error"]


def test_model_is_required(live_server: LiveServer) -> None:
    for path in ("/api/generate", "/api/chat", "/api/embed", "/api/show"):
        for body in ({}, {"model": ""}):
            r = httpx.post(f"{live_server.url}{path}", json=body, timeout=30)
            assert r.status_code == 400, (path, r.text)
            assert r.json() == {"error": "model is required"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"messages": HI, "format": "yaml"}, "format"),
        ({"messages": HI, "tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools"),
        ({"messages": HI, "tools": [{"type": "function"}]}, "tools[0].function"),
        (
            {"messages": HI, "tools": [{"function": {"name": "f", "parameters": {"type": "x"}}}]},
            "unknown JSON schema type",
        ),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": "hi"}, "messages"),
    ],
)
def test_bad_chat_bodies_are_400(
    live_server: LiveServer, body: dict[str, object], words: str
) -> None:
    r = httpx.post(f"{live_server.url}/api/chat", json={"model": MODEL, **body}, timeout=30)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and words in r.json()["error"]


def test_malformed_json_and_non_object_bodies(live_server: LiveServer) -> None:
    for path in ("/api/chat", "/api/generate", "/api/embed", "/api/show"):
        for content in (b"{not json", b"[1, 2]", b""):
            r = httpx.post(f"{live_server.url}{path}", content=content, timeout=30)
            assert r.status_code == 400, (path, content, r.text)
            assert set(r.json()) == {"error"} and isinstance(r.json()["error"], str)


def test_embed_bad_inputs(live_server: LiveServer) -> None:
    for body in ({"input": [1, 2]}, {"input": {"a": 1}}, {"input": ["ok", ""]}):
        r = httpx.post(f"{live_server.url}/api/embed", json={"model": MODEL, **body}, timeout=30)
        assert r.status_code == 400, r.text
        assert isinstance(r.json()["error"], str)


def test_unknown_route_is_404_in_ollama_shape(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}/api/nope")
    assert r.status_code == 404 and set(r.json()) == {"error"}


def test_api_keys(tmp_path: Path) -> None:
    key = "sk-hearth-ollama-key"
    server = LiveServer(make_settings(tmp_path, api_keys=[key], ctx_size=1024, parallel=1)).start()
    try:
        with ollama.Client(host=server.url) as anonymous:
            assert status_and_error(anonymous.list)[0] == 401
            call = lambda: anonymous.chat(model=MODEL, messages=HI, options=FEW)  # noqa: E731
            assert status_and_error(call)[0] == 401
        with ollama.Client(host=server.url, headers={"Authorization": "Bearer wrong-key-1"}) as c:
            assert status_and_error(c.list)[0] == 401
        with ollama.Client(host=server.url, headers={"Authorization": f"Bearer {key}"}) as good:
            assert [m.model for m in good.list().models] == [MODEL]
            assert good.chat(model=MODEL, messages=HI, options=FEW).done
        assert httpx.get(f"{server.url}/api/version").status_code == 401
        # The liveness probe stays open: clients send it before any key.
        assert httpx.get(f"{server.url}/").text == "Ollama is running"
    finally:
        server.stop()


class Full(FakeBackend):
    async def start(self, request):  # type: ignore[no-untyped-def]
        raise Overloaded("The server is busy: too many requests are waiting.", retry_after=2)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    registry = registry_of(
        FakeBackend("fails-midway", "one two three four five six", fail_after=3),
        Full("full"),
        FakeBackend("calls", CALLING),
    )
    live = LiveServer(make_settings(tmp_path_factory.mktemp("ollama-fake")), registry).start()
    yield live
    live.stop()


def test_error_mid_stream_is_a_final_error_line(scripted: LiveServer) -> None:
    body = {"model": "fails-midway", "messages": HI}
    with httpx.stream("POST", f"{scripted.url}/api/chat", json=body) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    assert len(lines) == 4
    assert all('"done":false' in line for line in lines[:3])
    assert lines[-1] == '{"error":"scripted engine failure"}'
    with ollama.Client(host=scripted.url) as c:
        stream = c.generate(model="fails-midway", prompt="hi", stream=True)
        with pytest.raises(ollama.ResponseError, match="scripted engine failure"):
            for _ in stream:
                pass
        status, error = status_and_error(lambda: c.generate(model="fails-midway", prompt="hi"))
        assert (status, error) == (500, "scripted engine failure")


def test_full_queue_is_503_with_retry_after(scripted: LiveServer) -> None:
    r = httpx.post(f"{scripted.url}/api/generate", json={"model": "full", "prompt": "hi"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    assert r.json() == {"error": "The server is busy: too many requests are waiting."}
    # The OpenAI surface keeps its own status for the same error.
    openai_reply = httpx.post(
        f"{scripted.url}/v1/completions", json={"model": "full", "prompt": "hi"}
    )
    assert openai_reply.status_code == 429


CALLING = (
    'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris, France"}}'
    "\n</tool_call>"
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("num_predict", [3, 6])
def test_a_call_cut_by_num_predict_is_left_out(
    scripted: LiveServer, num_predict: int, stream: bool
) -> None:
    """A reply cut inside a call (before its name is whole, or inside its arguments)
    shows neither the call's markup nor a call whose arguments are not an object: the
    ollama client reads arguments as an object and would fail on the rest."""
    with ollama.Client(host=scripted.url) as c:
        reply = c.chat(
            model="calls", messages=HI, tools=[WEATHER], options={"num_predict": num_predict},
            stream=stream,
        )  # fmt: skip
        parts = list(reply) if stream else [reply]
        whole = c.chat(model="calls", messages=HI, tools=[WEATHER])  # not cut: the call is there
    text = "".join(p.message.content or "" for p in parts)
    assert text.strip() == "Sure."
    assert not any(p.message.tool_calls for p in parts)
    assert parts[-1].done_reason == "length"
    [call] = whole.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "Paris, France"}
