"""Usage accounting against a real server and the bundled model: two database keys use
the OpenAI (chat whole and streamed, with and without usage; embeddings), Ollama and
Responses surfaces; GET /admin/usage (an admin key) and `hearth keys usage` then show
totals equal to the `usage` the clients were told, and /metrics counts by key name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from hearth.cli import main
from hearth.core.config import Settings
from hearth.engine.fake import FakeBackend
from hearth.store import Store
from hearth.store.usage import UsageTotal
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.e2e.test_backpressure import wait_for
from tests.prometheus import parse, value
from tests.stored_keys import stored_key

# Eight tokens of a reply that runs longer: every request of the same prompt gets as
# many, so a stream that is not told its usage still has a known one.
PROMPT = [{"role": "user", "content": "Count from one to one hundred in words."}]
SHORT = {"temperature": 0, "max_tokens": 8}


@dataclass
class Keys:
    team_a: str
    team_b: str
    boss: str
    prefix_a: str
    data_dir: Path


@dataclass
class Told:
    """What one key's clients were told."""

    requests: int = 0
    prompt: int = 0
    completion: int = 0
    by_surface: dict[str, int] = field(default_factory=dict)

    def add(self, surface: str, prompt: int, completion: int = 0) -> None:
        self.requests += 1
        self.prompt += prompt
        self.completion += completion
        self.by_surface[surface] = self.by_surface.get(surface, 0) + 1


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    data_dir = tmp_path_factory.mktemp("usage")
    made = {name: stored_key(name, admin=name == "boss") for name in ("team-a", "team-b", "boss")}

    async def add() -> None:
        store = Store(Settings(data_dir=data_dir).store_url)
        try:
            await store.upgrade()
            for _, row in made.values():
                await store.api_keys.add(row)
        finally:
            await store.close()

    asyncio.run(add())
    return Keys(
        made["team-a"][0], made["team-b"][0], made["boss"][0], made["team-a"][1].prefix, data_dir
    )


@pytest.fixture(scope="module")
def server(keys: Keys) -> Iterator[LiveServer]:
    live = LiveServer(make_settings(keys.data_dir)).start()
    yield live
    live.stop()


def admin_usage(server: LiveServer, as_key: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {as_key}"}
    return httpx.get(f"{server.url}/admin/usage", params=params, headers=headers, timeout=30)


def summed(rows: list[dict[str, object]]) -> tuple[int, int, int]:
    return (
        sum(int(r["requests"]) for r in rows),  # type: ignore[call-overload]
        sum(int(r["prompt_tokens"]) for r in rows),  # type: ignore[call-overload]
        sum(int(r["completion_tokens"]) for r in rows),  # type: ignore[call-overload]
    )


def use_openai(server: LiveServer, key: str, told: Told) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as client:
        whole = client.chat.completions.create(model=MODEL, messages=PROMPT, **SHORT)  # type: ignore[arg-type]
        assert whole.usage is not None and whole.usage.completion_tokens == 8
        told.add("openai", whole.usage.prompt_tokens, whole.usage.completion_tokens)
        streamed = None
        for chunk in client.chat.completions.create(
            model=MODEL,
            messages=PROMPT,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            **SHORT,  # type: ignore[arg-type]
        ):
            streamed = chunk.usage or streamed
        assert streamed is not None
        told.add("openai", streamed.prompt_tokens, streamed.completion_tokens)
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=PROMPT, stream=True, **SHORT)  # type: ignore[arg-type]
        )
        assert all(c.usage is None for c in chunks)  # not told: the same prompt's usage
        told.add("openai", streamed.prompt_tokens, streamed.completion_tokens)
        vectors = client.embeddings.create(model=MODEL, input=["a cat", "a dog on a mat"])
        assert vectors.usage.prompt_tokens > 0
        told.add("openai", vectors.usage.prompt_tokens)


def use_ollama_and_responses(server: LiveServer, key: str, told: Told) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    with ollama.Client(host=server.url, headers=auth) as client:
        chat = client.chat(
            model=MODEL, messages=PROMPT, options={"temperature": 0, "num_predict": 8}
        )
        told.add("ollama", chat.prompt_eval_count or 0, chat.eval_count or 0)
        last = None
        for part in client.generate(
            model=MODEL, prompt="Why is the sky blue?", stream=True, options={"num_predict": 6}
        ):
            last = part
        assert last is not None and last.done
        told.add("ollama", last.prompt_eval_count or 0, last.eval_count or 0)
        embedded = client.embed(model=MODEL, input="a cat")
        told.add("ollama", embedded.prompt_eval_count or 0)
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as client:
        response = client.responses.create(
            model=MODEL, input="Say hello.", max_output_tokens=8, temperature=0
        )
        assert response.usage is not None
        told.add("responses", response.usage.input_tokens, response.usage.output_tokens)


def test_usage_totals_equal_what_the_clients_were_told(
    server: LiveServer, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = Told(), Told()
    use_openai(server, keys.team_a, a)
    use_ollama_and_responses(server, keys.team_b, b)

    def reported(key: str) -> tuple[int, int, int]:
        reply = admin_usage(server, keys.boss, key=key)
        assert reply.status_code == 200, reply.text
        return summed(reply.json()["data"])

    # Each request is recorded as it closes: the last may land just after its reply.
    assert wait_for(lambda: reported("team-b")[0] == b.requests, timeout=5)
    assert reported("team-a") == (a.requests, a.prompt, a.completion)
    assert reported("team-b") == (b.requests, b.prompt, b.completion)
    assert reported(keys.prefix_a) == reported("team-a")  # a key by its prefix

    everything = admin_usage(server, keys.boss).json()["data"]
    today = datetime.now(UTC).date().isoformat()
    assert {(r["key"], r["model"]) for r in everything} == {("team-a", MODEL), ("team-b", MODEL)}
    assert all(r["total_tokens"] == r["prompt_tokens"] + r["completion_tokens"] for r in everything)
    since_today = admin_usage(server, keys.boss, since=today).json()["data"]
    assert summed(since_today) == summed(everything)
    assert admin_usage(server, keys.boss, since="2999-01-01").json()["data"] == []

    # The command line reads the same rows from the database.
    assert main(["keys", "usage", "--key", "team-b", "--data-dir", str(keys.data_dir)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["DAY", "KEY", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "CACHED"]
    cells = [line.split() for line in lines]
    assert {(c[1], c[2]) for c in cells} == {("team-b", MODEL)}
    assert tuple(sum(int(c[i]) for c in cells) for i in (3, 4, 5)) == (
        b.requests,
        b.prompt,
        b.completion,
    )

    # /metrics counts by the key's name, and never shows a key.
    scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {keys.boss}"})
    text = scraped.text
    samples = parse(text)
    for who, told in (("team-a", a), ("team-b", b)):
        for surface, count in told.by_surface.items():
            labels = {"key": who, "surface": surface, "status": "ok"}
            assert value(samples, "hearth_key_requests_total", **labels) == count
        assert value(samples, "hearth_key_tokens_total", key=who, kind="prompt") == told.prompt
        done = value(samples, "hearth_key_tokens_total", key=who, kind="completion")
        assert done == told.completion
    for secret in (keys.team_a, keys.team_b, keys.boss):
        assert secret not in text and secret[4:] not in text


def test_the_admin_api_wants_an_admin_key(server: LiveServer, keys: Keys) -> None:
    refused = admin_usage(server, keys.team_a)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert admin_usage(server, "sk-wrong").status_code == 401
    bad = admin_usage(server, keys.boss, since="yesterday")
    assert bad.status_code == 400 and "since" in bad.json()["error"]["message"]
    documented = httpx.get(
        f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {keys.boss}"}
    ).json()
    assert "UsageReport" in documented["components"]["schemas"]
    assert "/admin/usage" in documented["paths"]


def test_usage_not_yet_written_is_written_on_shutdown(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    live = LiveServer(settings, registry_of(FakeBackend(MODEL, "one two three")))
    live.state.usage.interval = 3600  # nothing is written on time: only the shutdown writes
    live.start()
    try:
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="open", max_retries=0) as client:
            reply = client.chat.completions.create(model=MODEL, messages=PROMPT)
        assert reply.usage is not None
        assert wait_for(lambda: live.state.usage.pending == 1, timeout=5)
    finally:
        live.stop()

    async def written() -> list[UsageTotal]:
        store = Store(settings.store_url)
        try:
            return await store.usage.totals()
        finally:
            await store.close()

    [total] = asyncio.run(written())
    assert (total.key, total.model, total.requests) == ("open", MODEL, 1)
    assert (total.prompt_tokens, total.completion_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
