"""A Hearth whose model is served by a pool of two other Hearth processes (the bundled
model), and by small servers that misbehave: balancing, retry before the first token,
clean errors after it, every surface on top, and a client that leaves freeing the slot.
Everything is real HTTP on 127.0.0.1; timeouts are short so that failures show fast."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from hearth.core.model_spec import ModelSpec
from tests.conftest import MODEL, LiveServer, make_settings
from tests.e2e.misbehaving import Misbehaving
from tests.postgres import PostgresServer
from tests.prometheus import scrape

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:deprecated$:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
]

# Short, so that each failure test takes seconds; generous enough for 2 busy cores.
TIMEOUTS = {"connect_timeout": 2.0, "first_token_timeout": 30.0, "token_timeout": 15.0}
FAST_FAIL = {**TIMEOUTS, "first_token_timeout": 2.0}


def _member(root: Path, name: str) -> LiveServer:
    server = LiveServer(make_settings(root / name, ctx_size=2048, parallel=4)).start()
    httpx.post(  # loaded now: a member loading its model fails health checks
        f"{server.url}/v1/completions",
        json={"model": MODEL, "prompt": "Hi", "max_tokens": 1},
        timeout=120,
    ).raise_for_status()
    return server


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    root = tmp_path_factory.mktemp("members")
    a, b = _member(root, "a"), _member(root, "b")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def bad() -> Iterator[dict[str, Misbehaving]]:
    modes = ("malformed", "hangs", "fails", "cut", "busy")
    servers = {mode: Misbehaving(mode) for mode in modes}  # type: ignore[arg-type]
    yield servers
    for server in servers.values():
        server.stop()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _pool(name: str, urls: list[str], **extra: object) -> ModelSpec:
    options = {**TIMEOUTS, "health_interval": 1.0, **extra}
    return ModelSpec(
        name=name, backend="upstream", urls=tuple(urls), upstream_model=MODEL, **options
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory,
    members: tuple[LiveServer, LiveServer],
    bad: dict[str, Misbehaving],
) -> Iterator[LiveServer]:
    a, b = members
    entries = (
        _pool(MODEL, [f"{a.url}/v1", f"{b.url}/v1"]),
        _pool("after-500", [bad["fails"].url, f"{a.url}/v1"]),
        _pool("after-dead", [_closed_port(), f"{b.url}/v1"]),
        _pool("malformed", [bad["malformed"].url], **FAST_FAIL),
        _pool("fails", [bad["fails"].url], **FAST_FAIL),
        _pool("cut", [bad["cut"].url], **FAST_FAIL),
        _pool("busy", [bad["busy"].url], **FAST_FAIL),
        _pool("hangs", [bad["hangs"].url], **{**FAST_FAIL, "health_interval": 30.0}),
    )
    server = LiveServer(make_settings(tmp_path_factory.mktemp("front"), model_entries=entries))
    yield server.start()
    server.stop()


@pytest.fixture
def client(front: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{front.url}/v1", api_key="none", max_retries=0) as c:
        yield c


def _served(url: str) -> float:
    """Requests a member has finished (choices, each counted once)."""
    samples = scrape(url)
    return sum(v for (name, _), v in samples.items() if name == "hearth_requests_finished_total")


def _running(url: str) -> int:
    models = httpx.get(f"{url}/health").json()["models"]
    return sum(m.get("running", 0) for m in models)


HELLO = [{"role": "user", "content": "Say hello."}]


def test_load_is_balanced(front: LiveServer, members: tuple[LiveServer, LiveServer]) -> None:
    before = [_served(m.url) for m in members]

    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=f"{front.url}/v1", api_key="n") as client:
            gate = asyncio.Semaphore(8)

            async def one() -> None:
                async with gate:
                    reply = await client.chat.completions.create(
                        model=MODEL,
                        messages=HELLO,
                        max_tokens=4,  # type: ignore[arg-type]
                    )
                    assert reply.usage is not None and reply.usage.completion_tokens >= 1

            await asyncio.gather(*(one() for _ in range(40)))

    asyncio.run(run())
    counts = [_served(m.url) - n for m, n in zip(members, before, strict=True)]
    assert sum(counts) == 40
    assert all(16 <= c <= 24 for c in counts), counts
    metrics = scrape(front.url)
    sent = {
        dict(labels)["member"]: v
        for (name, labels), v in metrics.items()
        if name == "hearth_upstream_member_requests_total" and dict(labels)["model"] == MODEL
    }
    assert set(sent) == {f"{m.url}/v1" for m in members} and sum(sent.values()) >= 40


def test_streaming_with_usage_and_logprobs(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
        logprobs=True,
        top_logprobs=2,
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 6 and usage.prompt_tokens > 5
    lps = [
        e
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for e in c.choices[0].logprobs.content or ()
    ]
    assert len(lps) == 6 and all(len(e.top_logprobs) == 2 for e in lps)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_tools_and_response_format_through_the_pool(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "maxLength": 20}},
                    "required": ["city"],
                },
            },
        }
    ]
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=64,
    )
    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]  # type: ignore[union-attr]
    assert reply.choices[0].finish_reason == "tool_calls"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Pick a number."}],
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
        max_tokens=32,
    )
    assert isinstance(json.loads(reply.choices[0].message.content or "")["n"], int)


def test_ollama_responses_and_assistants_on_the_pool(
    front: LiveServer, client: openai.OpenAI
) -> None:
    with ollama.Client(host=front.url) as oc:
        chat = oc.chat(model=MODEL, messages=HELLO, options={"num_predict": 4})
        assert chat.done_reason == "length" and chat.eval_count == 4 and chat.message.content
    first = client.responses.create(model=MODEL, input="Name a colour.", max_output_tokens=8)
    job = client.responses.create(
        model=MODEL,
        input="And another one.",
        previous_response_id=first.id,
        max_output_tokens=8,
        background=True,
    )
    deadline = time.monotonic() + 60
    while job.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        job = client.responses.retrieve(job.id)
    assert job.status in ("completed", "incomplete") and job.output_text
    assert job.usage is not None and job.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]
    assistant = client.beta.assistants.create(model=MODEL, instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello!"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=8
    )
    assert run.status in ("completed", "incomplete") and run.usage is not None
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
    assert messages.data[-1].role == "assistant" and messages.data[-1].content


def test_retried_on_another_member_before_the_first_token(
    client: openai.OpenAI, bad: dict[str, Misbehaving]
) -> None:
    served = bad["fails"].requests
    for model in ("after-500", "after-dead"):
        reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=3)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
    assert bad["fails"].requests == served + 1  # tried first, then the request went on


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("malformed", "not JSON"),
        ("fails", "HTTP 500: an HTML page"),
        ("hangs", "first-token timeout"),
    ],
)
def test_a_failing_member_is_a_clear_error_within_the_timeouts(
    client: openai.OpenAI, model: str, said: str
) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    assert time.monotonic() - started < 8
    assert info.value.status_code == 502 and said in info.value.message
    assert info.value.body["code"] == "upstream_error"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as stream_info:
        client.chat.completions.create(model=model, messages=HELLO, stream=True)  # type: ignore[arg-type]
    if model == "hangs":  # out of the pool until its next check: none is left
        assert stream_info.value.status_code == 503
        assert int(stream_info.value.response.headers["retry-after"]) >= 1
    else:
        assert stream_info.value.status_code == 502


def test_a_busy_member_is_a_429_with_its_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="busy", messages=HELLO)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "7"


def test_embeddings_through_the_pool(
    client: openai.OpenAI, members: tuple[LiveServer, LiveServer]
) -> None:
    texts = ["a lighthouse", "a keeper"]
    pooled = client.embeddings.create(model=MODEL, input=texts)
    with openai.OpenAI(base_url=f"{members[0].url}/v1", api_key="n") as direct:
        own = direct.embeddings.create(model=MODEL, input=texts)
    assert [len(d.embedding) for d in pooled.data] == [len(d.embedding) for d in own.data]
    assert pooled.data[1].embedding == pytest.approx(own.data[1].embedding, abs=1e-5)
    assert pooled.usage.prompt_tokens == own.usage.prompt_tokens


def test_a_stream_cut_after_its_first_token_ends_with_an_error_event(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="cut", messages=HELLO, stream=True)  # type: ignore[arg-type]
    text = ""
    with pytest.raises(openai.APIError, match="closed the stream before it finished"):
        for chunk in stream:
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert text == "Hello there"
    job = client.responses.create(model="cut", input="Hi", background=True)
    deadline = time.monotonic() + 30
    while job.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
        job = client.responses.retrieve(job.id)
    assert job.status == "failed" and job.error is not None
    assert "closed the stream" in job.error.message and job.output_text == "Hello there"
    host = str(client.base_url).removesuffix("/v1/")
    with ollama.Client(host=host) as oc, pytest.raises(ollama.ResponseError, match="closed"):
        for _ in oc.chat(model="cut", messages=HELLO, stream=True):
            pass


def test_a_client_that_leaves_frees_the_members_slot(
    front: LiveServer, members: tuple[LiveServer, LiveServer]
) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 1500, "stream": True}
    body["messages"] = [{"role": "user", "content": "Write a very long story."}]
    with httpx.stream("POST", f"{front.url}/v1/chat/completions", json=body, timeout=60) as reply:
        lines = reply.iter_lines()
        for _ in range(6):
            next(lines)
        assert sum(_running(m.url) for m in members) == 1
    deadline = time.monotonic() + 10
    while sum(_running(m.url) for m in members):
        assert time.monotonic() < deadline, "the member still decodes for a client that left"
        time.sleep(0.1)
    health = httpx.get(f"{front.url}/health").json()
    pool = next(m for m in health["models"] if m["id"] == MODEL)
    assert [m["in_flight"] for m in pool["members"]] == [0, 0]
    assert {m["state"] for m in pool["members"]} == {"up"}


class Process:
    """`hearth serve` in a subprocess on a free port: a member that can be killed."""

    def __init__(self, data_dir: Path) -> None:
        self.port = int(_closed_port().split(":")[2].split("/")[0])
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        env["HEARTH_DATA_DIR"] = str(data_dir)
        args = ["--port", str(self.port), "--ctx-size", "2048", "--parallel", "4"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hearth", "serve", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, "hearth serve exited"
            assert time.monotonic() < deadline, "hearth serve did not come up"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health").status_code == 200:
                    break
            time.sleep(0.2)
        body = {"model": MODEL, "prompt": "Hi", "max_tokens": 1}
        httpx.post(f"{self.url}/v1/completions", json=body, timeout=120).raise_for_status()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def test_a_member_killed_under_load(tmp_path: Path, members: tuple[LiveServer, LiveServer]) -> None:
    doomed = Process(tmp_path / "doomed")
    survivor = members[1]
    # The survivor ends up with all 40 on 8 slots: on a busy machine the last of them wait
    # longer than 30 s for their first token, which is the member being slow, not failing.
    # The front, the survivor and 40 clients share this process's GIL, and once in a busy
    # suite run a connection to the survivor took over 2 s to set up, which took the
    # survivor out as unreachable: a stall of the test process, not what is tested here
    # (the killed member refuses connections at once).
    slow = {"connect_timeout": 10.0, "first_token_timeout": 110.0}
    entry = _pool(MODEL, [f"{doomed.url}/v1", f"{survivor.url}/v1"], **slow)
    front = LiveServer(make_settings(tmp_path / "front", model_entries=(entry,))).start()
    story = [{"role": "user", "content": "Write a story about a lighthouse."}]

    async def one(client: openai.AsyncOpenAI) -> tuple[str, bool]:
        streaming = False
        try:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=story,
                max_tokens=40,
                stream=True,  # type: ignore[arg-type]
            )
            async for chunk in stream:
                streaming = streaming or bool(chunk.choices and chunk.choices[0].delta.content)
        except openai.APIError as exc:
            return f"error: {exc}", streaming
        return "ok", streaming

    async def kill_when_busy() -> None:
        for _ in range(1200):  # at most a minute
            if await asyncio.to_thread(_running, doomed.url) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # its sequences are streaming by now
        await asyncio.to_thread(doomed.kill)

    async def run() -> list[tuple[str, bool]]:
        async with openai.AsyncOpenAI(
            base_url=f"{front.url}/v1", api_key="n", max_retries=0, timeout=120
        ) as client:
            killer = asyncio.create_task(kill_when_busy())
            results = await asyncio.gather(*(one(client) for _ in range(40)))
            await killer
            return results

    try:
        results = asyncio.run(run())
    finally:
        front.stop()
        if doomed.proc.poll() is None:
            doomed.kill()
    failed = [(outcome, streaming) for outcome, streaming in results if outcome != "ok"]
    # Every request that had not streamed yet went on to the survivor; those streaming
    # from the member that died ended with an error event.
    assert failed, "the member was killed while nothing streamed from it"
    assert all(streaming for _, streaming in failed), failed
    assert all("closed the stream" in outcome for outcome, _ in failed), failed
    assert len(results) - len(failed) >= 30


def test_replicas_on_one_database_fronting_one_pool(
    tmp_path: Path, postgres: PostgresServer, members: tuple[LiveServer, LiveServer]
) -> None:
    url = postgres.create_database(f"hearth_pool_{time.monotonic_ns()}")
    entry = _pool(MODEL, [f"{m.url}/v1" for m in members])
    a, b = (
        LiveServer(make_settings(tmp_path / n, database_url=url, model_entries=(entry,))).start()
        for n in ("a", "b")
    )
    try:
        with (
            openai.OpenAI(base_url=f"{a.url}/v1", api_key="x", max_retries=0) as on_a,
            openai.OpenAI(base_url=f"{b.url}/v1", api_key="x", max_retries=0) as on_b,
        ):
            job = on_a.responses.create(
                model=MODEL, input="Write a long story about a river.", max_output_tokens=1000,
                background=True,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while len(on_b.responses.retrieve(job.id).output_text) < 20:
                assert time.monotonic() < deadline, "replica b never saw a's job grow"
                time.sleep(0.2)
            assert sum(_running(m.url) for m in members) == 1
            assert on_b.responses.cancel(job.id).status == "cancelled"
            deadline = time.monotonic() + 10
            while sum(_running(m.url) for m in members):  # a closed its upstream request
                assert time.monotonic() < deadline, "the member still decodes a cancelled job"
                time.sleep(0.1)
            final = on_a.responses.retrieve(job.id)
            assert final.status == "cancelled" and final.output_text
    finally:
        a.stop()
        b.stop()
