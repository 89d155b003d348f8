"""Per-key limits against a real server with the bundled model, through the real clients:
rpm (5N concurrent requests, exactly N pass, the rest RateLimitError with Retry-After),
tokens per minute, the budget (insufficient_quota), concurrent requests, the Ollama
client's 429, the x-ratelimit-* headers, and the WebSocket's error frame."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import ollama
import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings
from tests.e2e.key_limit_server import NEVER_END, add_keys
from tests.e2e.ws_client import chat, open_socket, send, until_end

pytestmark = pytest.mark.timeout(300)

N = 3
KEYS: dict[str, dict[str, object]] = {
    "rpm": {"rpm": N},
    "tpm": {"tpm": 1000},
    "budget": {"budget_tokens": 60, "budget_period": "day"},
    "concurrent": {"max_concurrent": 1},
    "ollama": {"rpm": 1},
    # A request every 30 s, a token a second: refills slower than the test runs.
    "headers": {"rpm": 2, "tpm": 60},
    "socket": {"rpm": 1},
    "free": {},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    settings = make_settings(tmp_path_factory.mktemp("limits"))
    keys = add_keys(settings.store_url, KEYS)
    server = LiveServer(settings).start()
    yield server, keys
    server.stop()


def client(served: tuple[LiveServer, dict[str, str]], name: str) -> openai.OpenAI:
    server, keys = served
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=keys[name], max_retries=0)


def ask(c: openai.OpenAI, content: str = "Say hi.", **params: object) -> object:
    return c.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}],
        **{"max_tokens": 4, "temperature": 0, **params},  # type: ignore[arg-type]
    )  # fmt: skip


def outcome(c: openai.OpenAI) -> object:
    try:
        return ask(c)
    except openai.RateLimitError as err:
        return err


def test_5n_concurrent_requests_against_rpm_n_admit_exactly_n(
    served: tuple[LiveServer, dict[str, str]],
) -> None:
    with client(served, "rpm") as c, ThreadPoolExecutor(5 * N) as pool:
        results = list(pool.map(lambda _: outcome(c), range(5 * N)))
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(results) - len(refused) == N
    assert len(refused) == 4 * N
    for err in refused:
        assert err.code == "rate_limit_exceeded"
        assert isinstance(err.body, dict) and err.body["type"] == "requests"
        assert 1 <= int(err.response.headers["retry-after"]) <= 60 // N + 1
        assert err.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_per_minute_refuse_a_prompt_over_what_is_left(
    served: tuple[LiveServer, dict[str, str]],
) -> None:
    # 850+ tokens of 1000 a minute: the second is refused unless the first took 50 s.
    long = "Count the words of this text. " + "word " * 850
    with client(served, "tpm") as c:
        first = ask(c, long)
        assert first.usage.prompt_tokens > 850  # type: ignore[attr-defined]
        with pytest.raises(openai.RateLimitError) as refused:
            ask(c, long)
        assert refused.value.code == "rate_limit_exceeded"
        assert isinstance(refused.value.body, dict) and refused.value.body["type"] == "tokens"
        assert int(refused.value.response.headers["retry-after"]) >= 1
        ask(c)  # a short prompt still fits: the refusal took nothing


def test_a_spent_budget_is_insufficient_quota(served: tuple[LiveServer, dict[str, str]]) -> None:
    with client(served, "budget") as c:
        # The prompt (~30 tokens with the template) and 40 tokens of reply spend the 60.
        ask(c, max_tokens=40, logit_bias=NEVER_END)
        with pytest.raises(openai.RateLimitError) as refused:
            ask(c)
    assert refused.value.code == "insufficient_quota"
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["type"] == "insufficient_quota"
    assert int(refused.value.response.headers["retry-after"]) <= 86400


def test_max_concurrent_holds_a_slot_until_the_stream_ends(
    served: tuple[LiveServer, dict[str, str]],
) -> None:
    with client(served, "concurrent") as c:
        stream = c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Tell a long story."}],
            max_tokens=300, logit_bias=NEVER_END, stream=True,
        )  # fmt: skip
        next(iter(stream))  # it runs
        with pytest.raises(openai.RateLimitError) as refused:
            ask(c)
        assert "concurrent" in refused.value.message
        assert refused.value.response.headers["retry-after"] == "1"
        stream.close()  # the client leaves: the slot comes back
        deadline = time.monotonic() + 10
        while isinstance(outcome(c), openai.RateLimitError):
            assert time.monotonic() < deadline, "the slot was not given back"
            time.sleep(0.1)


def test_the_ollama_client_gets_a_429(served: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = served
    headers = {"Authorization": f"Bearer {keys['ollama']}"}
    with ollama.Client(host=server.url, headers=headers) as c:
        messages = [{"role": "user", "content": "hi"}]
        c.chat(model=MODEL, messages=messages, options={"num_predict": 2})
        with pytest.raises(ollama.ResponseError) as refused:
            c.chat(model=MODEL, messages=messages, options={"num_predict": 2})
    assert refused.value.status_code == 429
    assert "Rate limit reached" in refused.value.error


def test_every_v1_response_of_a_limited_key_has_the_ratelimit_headers(
    served: tuple[LiveServer, dict[str, str]],
) -> None:
    with client(served, "headers") as c:
        models = c.models.with_raw_response.list()
        began = time.monotonic()
        reply = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
        took = time.monotonic() - began
    got = models.headers
    assert got["x-ratelimit-limit-requests"] == "2"
    assert got["x-ratelimit-remaining-requests"] == "1"
    # One request of 2 a minute comes back in 30 s (a little less by the time it is sent).
    reset = got["x-ratelimit-reset-requests"]
    assert reset.endswith("s") and 25 < float(reset.removesuffix("s")) <= 30
    assert got["x-ratelimit-limit-tokens"] == "60"
    assert got["x-ratelimit-remaining-tokens"] == "60"
    assert got["x-ratelimit-reset-tokens"] == "0ms"
    after = reply.headers
    assert after["x-ratelimit-remaining-requests"] == "0"
    usage = reply.parse().usage
    assert usage is not None
    # The whole reply was charged before it was sent; a token a second came back since.
    remaining = int(after["x-ratelimit-remaining-tokens"])
    assert 60 - usage.total_tokens - 1 <= remaining <= 60 - usage.total_tokens + took + 1
    reset = after["x-ratelimit-reset-tokens"]  # a token a second: as many seconds as taken
    assert reset.endswith("s") and float(reset.removesuffix("s")) >= 60 - remaining - 1
    server, keys = served
    free = httpx.get(
        f"{server.url}/v1/models", headers={"Authorization": f"Bearer {keys['free']}"}, timeout=30
    )
    assert free.status_code == 200
    assert not any(name.startswith("x-ratelimit") for name in free.headers)


def test_each_websocket_chat_message_counts_as_a_request(
    served: tuple[LiveServer, dict[str, str]],
) -> None:
    server, keys = served

    async def talk() -> tuple[dict[str, object], dict[str, object]]:
        headers = {"Authorization": f"Bearer {keys['socket']}"}
        async with open_socket(server, additional_headers=headers) as ws:
            await send(ws, chat("a", "hi", max_tokens=2))
            first, _ = await until_end(ws, "a")
            await send(ws, chat("b", "hi", max_tokens=2))
            second, _ = await until_end(ws, "b")
        return first, second

    first, second = asyncio.run(talk())
    assert first["type"] == "done"
    assert second["type"] == "error"
    assert second["code"] == "rate_limit_exceeded"
    assert isinstance(second["retry_after"], float) and second["retry_after"] > 0
