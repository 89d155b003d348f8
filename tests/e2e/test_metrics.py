"""GET /metrics as Prometheus scrapes it, while real clients use every surface.

Each test reads the counters before and after what it does and compares the difference
with what the clients were told (their `usage`), so other traffic cannot disturb it.
Refusals for want of a slot (429, 503) are counted in test_backpressure.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.e2e.test_backpressure import wait_for
from tests.e2e.ws_client import chat, open_socket, send, until_end
from tests.prometheus import Samples, delta, parse, value
from tests.prometheus import scrape as scrape_url

KEY = "sk-metrics-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
GREEDY = {"temperature": 0, "max_tokens": 8}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """With an API key, and /metrics opened to Prometheus (--open-metrics)."""
    settings = make_settings(
        tmp_path_factory.mktemp("metrics"),
        api_keys=[KEY],
        open_metrics=True,
        max_request_bytes=64 * 1024,
    )
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as c:
        yield c


def scrape(server: LiveServer) -> Samples:
    return scrape_url(server.url)


def rose(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return delta(before, after, name, model=MODEL, **labels)


def http(before: Samples, after: Samples, method: str, route: str, status: int) -> float:
    """How many more requests the HTTP counter shows for this method, route and status."""
    labels = {"method": method, "route": route, "status": str(status)}
    return delta(before, after, "hearth_http_requests_total", **labels)


REASONS = ("stop", "length", "tool_calls", "cancelled", "error")


def finished(before: Samples, after: Samples) -> float:
    name = "hearth_requests_finished_total"
    return sum(rose(before, after, name, finish_reason=reason) for reason in REASONS)


def test_openai_token_counters_rise_by_the_usage_clients_got(
    server: LiveServer, client: openai.OpenAI
) -> None:
    messages = [{"role": "user", "content": "Name a colour."}]
    before = scrape(server)
    whole = client.chat.completions.create(model=MODEL, messages=messages, **GREEDY)  # type: ignore[arg-type]
    streamed = None
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        **GREEDY,
    ):
        streamed = chunk.usage or streamed
    text = client.completions.create(model=MODEL, prompt="Once upon a time", **GREEDY)
    response = client.responses.create(
        model=MODEL, input="Say hello.", max_output_tokens=16, temperature=0
    )
    after = scrape(server)

    assert whole.usage is not None and streamed is not None and text.usage is not None
    assert response.usage is not None
    chats = [whole.usage, streamed, text.usage]
    prompt = sum(u.prompt_tokens for u in chats) + response.usage.input_tokens
    generated = sum(u.completion_tokens for u in chats) + response.usage.output_tokens
    cached = sum(
        u.prompt_tokens_details.cached_tokens or 0 for u in chats if u.prompt_tokens_details
    ) + (response.usage.input_tokens_details.cached_tokens or 0)
    assert streamed.prompt_tokens_details and streamed.prompt_tokens_details.cached_tokens
    assert rose(before, after, "hearth_prompt_tokens_total") == prompt
    assert rose(before, after, "hearth_generation_tokens_total") == generated
    assert rose(before, after, "hearth_prompt_tokens_cached_total") == cached > 0
    assert finished(before, after) == 4
    assert rose(before, after, "hearth_time_to_first_token_seconds_count") == 4
    assert rose(before, after, "hearth_e2e_request_latency_seconds_count") == 4
    assert rose(before, after, "hearth_inter_token_latency_seconds_count") > 0
    assert http(before, after, "POST", "/v1/chat/completions", 200) == 2
    assert http(before, after, "POST", "/v1/completions", 200) == 1
    assert http(before, after, "POST", "/v1/responses", 200) == 1


def test_ollama_token_counters_rise_by_the_counts_clients_got(server: LiveServer) -> None:
    options = {"temperature": 0, "num_predict": 8}
    before = scrape(server)
    with ollama.Client(host=server.url, headers=AUTH) as client:
        whole = client.chat(
            model=MODEL, messages=[{"role": "user", "content": "Name a fruit."}], options=options
        )
        parts = client.generate(model=MODEL, prompt="The sky is", stream=True, options=options)
        last = list(parts)[-1]
    after = scrape(server)

    assert last.done
    prompt = (whole.prompt_eval_count or 0) + (last.prompt_eval_count or 0)
    generated = (whole.eval_count or 0) + (last.eval_count or 0)
    assert prompt > 0 and generated > 0
    assert rose(before, after, "hearth_prompt_tokens_total") == prompt
    assert rose(before, after, "hearth_generation_tokens_total") == generated
    assert finished(before, after) == 2
    assert rose(before, after, "hearth_time_to_first_token_seconds_count") == 2
    assert http(before, after, "POST", "/api/chat", 200) == 1
    assert http(before, after, "POST", "/api/generate", 200) == 1


def test_embeddings_are_counted_on_both_surfaces(server: LiveServer, client: openai.OpenAI) -> None:
    before = scrape(server)
    vectors = client.embeddings.create(model=MODEL, input=["a cat", "a dog"])
    with ollama.Client(host=server.url, headers=AUTH) as o:
        pooled = o.embed(model=MODEL, input="a bird")
    after = scrape(server)

    tokens = vectors.usage.prompt_tokens + (pooled.prompt_eval_count or 0)
    assert vectors.usage.prompt_tokens > 0 and pooled.prompt_eval_count
    assert rose(before, after, "hearth_embedding_requests_total", outcome="done") == 2
    assert rose(before, after, "hearth_embedding_tokens_total") == tokens
    assert rose(before, after, "hearth_embedding_latency_seconds_count") == 2
    assert http(before, after, "POST", "/v1/embeddings", 200) == 1
    assert http(before, after, "POST", "/api/embed", 200) == 1
    # Embeddings are not generations: those counters stay where they were.
    assert finished(before, after) == 0
    assert rose(before, after, "hearth_prompt_tokens_total") == 0


def test_websocket_turns_and_connections_are_counted(server: LiveServer) -> None:
    before = scrape(server)

    async def one_turn() -> dict[str, int]:
        async with open_socket(server, additional_headers=AUTH) as ws:
            await send(ws, chat("r1", "Say hi.", max_tokens=8, temperature=0))
            done, _ = await until_end(ws, "r1")
            assert done["type"] == "done", done
            during = scrape(server)
            assert value(during, "hearth_websocket_connections_open") == 1
            usage: dict[str, int] = done["usage"]
            return usage

    usage = asyncio.run(one_turn())
    assert wait_for(lambda: value(scrape(server), "hearth_websocket_connections_open") == 0, 10)
    after = scrape(server)
    assert delta(before, after, "hearth_websocket_connections_total") == 1
    assert rose(before, after, "hearth_prompt_tokens_total") == usage["prompt_tokens"]
    assert rose(before, after, "hearth_generation_tokens_total") == usage["completion_tokens"]


def test_routes_are_labelled_by_template_and_refusals_before_routing_counted(
    server: LiveServer,
) -> None:
    before = scrape(server)
    missing = httpx.get(f"{server.url}/v1/responses/resp_nosuch123", headers=AUTH)
    assert missing.status_code == 404
    assert httpx.get(f"{server.url}/no/such/path/xyz987", headers=AUTH).status_code == 404
    assert httpx.get(f"{server.url}/v1/models").status_code == 401  # no key
    too_big = httpx.post(
        f"{server.url}/v1/chat/completions", headers=AUTH, content=b"x" * (65 * 1024)
    )
    assert too_big.status_code == 413
    text = httpx.get(f"{server.url}/metrics").text
    after = parse(text)

    assert http(before, after, "GET", "/v1/responses/{response_id}", 404) == 1
    assert http(before, after, "GET", "unmatched", 404) == 1
    # Refused by the auth gate and the body limit before any route was chosen.
    assert http(before, after, "GET", "unmatched", 401) == 1
    assert http(before, after, "POST", "unmatched", 413) == 1
    assert "resp_nosuch123" not in text and "xyz987" not in text
    assert value(after, "hearth_model_state", model=MODEL, state="loaded") == 1
    assert value(after, "hearth_slots", model=MODEL) == server.state.settings.parallel
    assert value(after, "hearth_kv_cache_cells", model=MODEL) == server.state.settings.ctx_size


def test_no_metrics_means_no_endpoint(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, metrics=False)
    live = LiveServer(settings, registry_of(FakeBackend(MODEL))).start()
    try:
        assert httpx.get(f"{live.url}/metrics").status_code == 404
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as c:
            reply = c.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
        assert reply.choices[0].message.content
        assert live.state.metrics is None
        # The usage log still hears of every request; Prometheus does not.
        assert live.state.registry.meter.meters == (live.state.usage,)
    finally:
        live.stop()
