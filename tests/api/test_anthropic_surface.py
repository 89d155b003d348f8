"""The Anthropic Messages surface's wire format and errors, with scripted backends and the
real anthropic SDK: what the bundled model cannot be made to do on demand (a full queue,
a failure mid-stream, a model silent for a while, an exact tool-call reply)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from hearth.api.anthropic import stream as anthropic_stream
from hearth.core.errors import Overloaded
from hearth.engine.fake import FakeBackend
from hearth.engine.types import GenerationRequest
from tests.conftest import LiveServer, make_settings, registry_of

KEY = "sk-anthropic-surface-test"
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        "cache_control": {"type": "ephemeral"},
    }
]
HI = [{"role": "user", "content": "hi"}]


class Busy(FakeBackend):
    async def start(self, request: GenerationRequest) -> object:  # type: ignore[override]
        raise Overloaded("every slot is in use and the queue is full", retry_after=1.0)


def _server(tmp: Path, **settings: object) -> LiveServer:
    registry = registry_of(
        FakeBackend("ok", "one two three"),
        FakeBackend("caller", f"Let me check.\n{CALL}\n{CALL}"),
        FakeBackend("fails-midway", "one two three four five six", fail_after=3),
        Busy("busy"),
        FakeBackend("slow", "late", token_delay=0.5),  # silent, as while a prompt is read
    )
    return LiveServer(make_settings(tmp, **settings), registry).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = _server(Path(tmp_path_factory.mktemp("anthropic")))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0) as c:
        yield c


def _events(server: LiveServer, **body: object) -> list[tuple[str, dict]]:
    payload = {"max_tokens": 50, "messages": HI, "stream": True, **body}
    with httpx.stream("POST", f"{server.url}/v1/messages", json=payload) as r:
        assert r.status_code == 200
        assert r.headers["request-id"].startswith("req_")
        text = r.read().decode()
    out = []
    for chunk in text.strip().split("\n\n"):
        name, data = chunk.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_a_message_has_anthropics_shape(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model="ok", max_tokens=50, messages=HI, system="Be brief.")
    assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant"
    assert m.model == "ok"
    assert [(b.type, b.text) for b in m.content] == [("text", "one two three")]  # type: ignore[union-attr]
    assert (m.stop_reason, m.stop_sequence) == ("end_turn", None)
    assert m.usage.output_tokens == 3
    assert m.usage.input_tokens > 0 and m.usage.cache_read_input_tokens == 0


def test_stop_sequence_names_the_one_that_matched(client: anthropic.Anthropic) -> None:
    m = client.messages.create(
        model="ok", max_tokens=50, messages=HI, stop_sequences=["zzz", "three", "two"]
    )
    assert (m.stop_reason, m.stop_sequence) == ("stop_sequence", "two")
    assert m.content[0].text == "one "  # type: ignore[union-attr]


def test_max_tokens_stop_reason(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model="ok", max_tokens=2, messages=HI)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 2


def test_max_tokens_past_the_context_is_a_ceiling(client: anthropic.Anthropic) -> None:
    # Far past the fake model's 256 tokens (the SDK wants a stream past 21333): the reply
    # gets the rest of the context.
    m = client.messages.create(model="ok", max_tokens=16000, messages=HI)
    assert m.content[0].text == "one two three"  # type: ignore[union-attr]
    too_long = [{"role": "user", "content": "word " * 300}]
    with pytest.raises(anthropic.BadRequestError, match="maximum context length"):
        client.messages.create(model="ok", max_tokens=16000, messages=too_long)  # type: ignore[arg-type]


def test_stream_events_come_in_anthropics_order(server: LiveServer) -> None:
    events = _events(server, model="ok")
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == 3


def test_a_silent_model_gets_pings(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anthropic_stream, "PING_SECONDS", 0.1)
    names = [name for name, _ in _events(server, model="slow")]
    assert names.count("ping") >= 3  # the first, then at least two while it was silent
    assert names[names.index("content_block_start") :].count("ping") == 0


def test_tool_calls_stream_as_tool_use_blocks(server: LiveServer) -> None:
    events = _events(server, model="caller", tools=TOOLS)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use", "tool_use"]
    assert all(b["id"].startswith("toolu_") and b["input"] == {} for b in starts[1:])
    for index in (1, 2):
        partial = "".join(
            d["delta"]["partial_json"]
            for n, d in events
            if n == "content_block_delta" and d["index"] == index
        )
        assert json.loads(partial) == {"city": "Paris"}
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_the_sdk_assembles_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="caller",
        max_tokens=100,
        messages=HI,
        tools=TOOLS,  # type: ignore[arg-type]
    ) as s:
        final = s.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"})] * 2
    assert final.stop_reason == "tool_use"


def test_error_mid_stream_is_an_error_event(
    client: anthropic.Anthropic, server: LiveServer
) -> None:
    events = _events(server, model="fails-midway")
    assert events[-1] == (
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "scripted engine failure"}},
    )
    failing = client.messages.stream(model="fails-midway", max_tokens=50, messages=HI)
    with pytest.raises(anthropic.APIStatusError, match="scripted engine failure"), failing as s:
        s.get_final_message()


@pytest.mark.parametrize(
    ("body", "error", "status", "kind"),
    [
        ({"model": "ok", "messages": HI}, anthropic.BadRequestError, 400, "invalid_request_error"),
        (
            {"model": "ok", "max_tokens": 5, "messages": HI, "temperature": 1.5},
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
        ),
        (
            {"model": "nope", "max_tokens": 5, "messages": HI},
            anthropic.NotFoundError,
            404,
            "not_found_error",
        ),
        (
            {"model": "busy", "max_tokens": 5, "messages": HI},
            anthropic.OverloadedError,
            529,
            "overloaded_error",
        ),
    ],
)
def test_errors_have_anthropics_shape_and_status(
    client: anthropic.Anthropic, body: dict, error: type, status: int, kind: str
) -> None:
    with pytest.raises(error) as raised:
        client.post("/v1/messages", body=body, cast_to=object)
    exc = raised.value
    assert exc.status_code == status  # type: ignore[attr-defined]
    assert exc.body["type"] == "error" and exc.body["error"]["type"] == kind  # type: ignore[attr-defined]
    assert exc.request_id.startswith("req_")  # type: ignore[attr-defined]


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
NO_CALL = {"type": "tool_result", "tool_use_id": "toolu_nowhere", "content": "42"}


@pytest.mark.parametrize(("block", "words"), [(IMAGE, "no vision"), (NO_CALL, "toolu_nowhere")])
def test_blocks_that_cannot_be_served_are_refused(
    client: anthropic.Anthropic, block: dict, words: str
) -> None:
    turn = {"role": "user", "content": [block]}
    with pytest.raises(anthropic.BadRequestError, match=words):
        client.messages.create(model="ok", max_tokens=5, messages=[turn])  # type: ignore[list-item]


def test_unknown_betas_are_ignored(client: anthropic.Anthropic) -> None:
    m = client.messages.create(
        model="ok",
        max_tokens=5,
        messages=HI,
        extra_headers={"anthropic-beta": "no-such-beta-2099-01-01,prompt-caching-2024-07-31"},
    )
    assert m.content[0].text == "one two three"  # type: ignore[union-attr]


def test_count_tokens_counts_what_the_message_decodes(client: anthropic.Anthropic) -> None:
    body = {"model": "ok", "messages": HI, "system": "Be brief.", "tools": TOOLS}
    counted = client.messages.count_tokens(**body)  # type: ignore[arg-type]
    m = client.messages.create(max_tokens=5, **body)  # type: ignore[arg-type]
    assert counted.input_tokens == m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0)


def test_models_answer_each_sdk_in_its_own_shape(
    server: LiveServer, client: anthropic.Anthropic
) -> None:
    page = client.models.list()
    assert {m.id for m in page.data} >= {"ok", "caller"}
    assert all(m.type == "model" and m.display_name == m.id for m in page.data)
    assert page.first_id == page.data[0].id and page.has_more is False
    two = client.models.list(limit=2)
    assert len(two.data) == 2 and two.has_more is True
    after = client.models.list(after_id=two.data[-1].id, limit=1)
    assert after.data[0].id == page.data[2].id
    assert client.models.retrieve("ok").id == "ok"
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as oa:
        assert {m.object for m in oa.models.list().data} == {"model"}
        assert oa.models.retrieve("ok").owned_by == "hearth"


def test_a_missing_or_wrong_key_is_an_authentication_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    live = _server(Path(tmp_path_factory.mktemp("keyed")), api_keys=[KEY])
    try:
        for key in ("wrong", None):
            headers = {} if key is None else {"x-api-key": key}
            r = httpx.post(
                f"{live.url}/v1/messages",
                json={"model": "ok", "max_tokens": 5, "messages": HI},
                headers={"anthropic-version": "2023-06-01", **headers},
            )
            assert r.status_code == 401 and r.headers["request-id"].startswith("req_")
            assert r.json()["error"]["type"] == "authentication_error"
        wrong = anthropic.Anthropic(base_url=live.url, api_key="wrong", max_retries=0)
        with wrong as c, pytest.raises(anthropic.AuthenticationError):
            c.messages.create(model="ok", max_tokens=5, messages=HI)
        with anthropic.Anthropic(base_url=live.url, api_key=KEY, max_retries=0) as c:
            assert c.messages.create(model="ok", max_tokens=5, messages=HI).content
    finally:
        live.stop()
