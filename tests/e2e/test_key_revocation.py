"""Revoking a key ends what it has running, on a real server with the bundled model: a
long stream ends with its surface's error event, a reply not yet sent is a 401, and an
open WebSocket is closed (1008), within about a second of a revoke through the admin
API and about two of one straight in the database (as `hearth keys revoke` in another
process does); the model's slots are free afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import ollama
import openai
import pytest
from websockets.exceptions import ConnectionClosed

from hearth.core.ids import unix_now
from hearth.store import Store
from tests.conftest import MODEL, LiveServer, make_settings
from tests.e2e.ws_client import NEVER_END, chat, next_frame, open_socket, send, settles_to_idle

pytestmark = pytest.mark.timeout(300)

ADMIN = "sk-operator"
LONG = 4000  # tokens: far more than the bundled model writes in the tests' seconds
PROMPT = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
BY_API = 2.0  # seconds from a revoke to the end of the key's streams
BY_STORE = 2.5  # the watcher looks once a second
# The engine drops a cancelled sequence at its next step, which on a busy machine takes a
# while; a generation left running would go on far longer (LONG tokens).
IDLE = 10.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("revoke"), api_keys=[ADMIN])
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture
def admin_sync(server: LiveServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def admin(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(
        base_url=f"{server.url}/admin", headers=headers, timeout=30
    ) as client:
        yield client


async def new_key(admin: httpx.AsyncClient, name: str) -> str:
    reply = await admin.post("/keys", json={"name": name})
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["key"]
    return key


async def revoke_by_api(admin: httpx.AsyncClient, name: str) -> float:
    reply = await admin.post(f"/keys/{name}/revoke")
    assert reply.status_code == 200, reply.text
    return time.monotonic()


async def revoke_in_the_store(server: LiveServer, name: str) -> float:
    """As `hearth keys revoke` in another process: straight in the database."""
    store = Store(server.state.settings.store_url)
    try:
        assert await store.api_keys.revoke(name, unix_now()) is not None
    finally:
        await store.close()
    return time.monotonic()


def openai_client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


async def test_a_stream_and_a_waiting_reply_end_when_revoked_through_the_api(
    server: LiveServer, admin: httpx.AsyncClient
) -> None:
    key = await new_key(admin, "streamer")
    async with openai_client(server, key) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=PROMPT, max_tokens=LONG, temperature=0,
            logit_bias=NEVER_END, stream=True,
        )  # fmt: skip
        whole = asyncio.create_task(
            client.chat.completions.create(
                model=MODEL,
                messages=PROMPT,
                max_tokens=LONG,
                temperature=0,
                logit_bias=NEVER_END,
            )
        )
        received = ""
        chunks = aiter(stream)
        while len(received) < 40:  # it is well under way
            chunk = await anext(chunks)
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
        revoked_at = await revoke_by_api(admin, "streamer")
        with pytest.raises(openai.APIError) as ended:
            async for _ in chunks:
                pass
        stream_ended = time.monotonic()
        with pytest.raises(openai.AuthenticationError):
            await whole
        whole_ended = time.monotonic()
    assert "revoked" in ended.value.message
    assert stream_ended - revoked_at < BY_API and whole_ended - revoked_at < BY_API
    assert await settles_to_idle(server, within=IDLE)  # the generations stopped too
    async with openai_client(server, key) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


async def test_an_ollama_stream_ends_when_revoked_in_the_database(
    server: LiveServer, admin: httpx.AsyncClient
) -> None:
    key = await new_key(admin, "ollama-user")
    client = ollama.AsyncClient(host=server.url, headers={"Authorization": f"Bearer {key}"})
    stream = await client.chat(
        model=MODEL, messages=PROMPT, stream=True,
        options={"num_predict": LONG, "temperature": 0},
    )  # fmt: skip
    parts = aiter(stream)
    for _ in range(10):
        part = await anext(parts)
        assert not part.done
    revoked_at = await revoke_in_the_store(server, "ollama-user")
    with pytest.raises(ollama.ResponseError) as ended:
        async for _ in parts:
            pass
    assert time.monotonic() - revoked_at < BY_STORE
    assert "revoked" in ended.value.error
    assert await settles_to_idle(server, within=IDLE)


@pytest.mark.parametrize(("how", "auth"), [("api", "header"), ("store", "frame")])
async def test_an_open_websocket_is_closed(
    server: LiveServer, admin: httpx.AsyncClient, how: str, auth: str
) -> None:
    name = f"socket-{how}"
    key = await new_key(admin, name)
    headers = {"Authorization": f"Bearer {key}"} if auth == "header" else {}
    async with open_socket(server, additional_headers=headers) as ws:
        if auth == "frame":
            await send(ws, {"type": "auth", "key": key})
            assert await next_frame(ws) == {"type": "authenticated"}
        await send(ws, chat("r1", PROMPT[0]["content"], max_tokens=LONG, logit_bias=NEVER_END))
        frame = await next_frame(ws)
        assert frame["type"] == "delta", frame
        if how == "api":
            revoked_at = await revoke_by_api(admin, name)
        else:
            revoked_at = await revoke_in_the_store(server, name)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await next_frame(ws, within=10)
        assert time.monotonic() - revoked_at < (BY_API if how == "api" else BY_STORE)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "revoked" in closed.value.rcvd.reason
    assert await settles_to_idle(server, within=IDLE)


async def test_other_keys_go_on(server: LiveServer, admin: httpx.AsyncClient) -> None:
    """A revoke ends only its own key's work: another key's stream finishes whole."""
    kept, gone = await new_key(admin, "kept"), await new_key(admin, "gone")
    async with openai_client(server, kept) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=PROMPT, max_tokens=60, temperature=0,
            logit_bias=NEVER_END, stream=True,
        )  # fmt: skip
        chunks = aiter(stream)
        await anext(chunks)
        await revoke_by_api(admin, "gone")
        finish = [c.choices[0].finish_reason async for c in chunks if c.choices]
    assert finish[-1] == "length"
    assert gone  # revoked while unused: nothing of it was running


def test_a_responses_stream_ends_failed_with_its_job(
    server: LiveServer, admin_sync: httpx.Client
) -> None:
    """A Responses stream follows its job: a revoke stops the job (saved failed, saying
    why) and the stream ends with its `response.failed` event, whole."""
    created = admin_sync.post("/admin/keys", json={"name": "responder"})
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    body = {
        "model": MODEL, "input": PROMPT, "stream": True, "max_output_tokens": LONG,
        "temperature": 0,
    }  # fmt: skip
    lines: list[str] = []
    revoked = 0.0
    url = f"{server.url}/v1/responses"
    with httpx.stream("POST", url, headers=headers, json=body, timeout=60) as reply:
        for line in reply.iter_lines():
            lines.append(line)
            if sum("output_text.delta" in line for line in lines) == 10:
                revoked = time.monotonic()
                assert admin_sync.post("/admin/keys/responder/revoke").status_code == 200
    assert time.monotonic() - revoked < BY_API
    events = [
        json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")
    ]
    assert events[-1]["type"] == "response.failed"
    assert "revoked" in events[-1]["response"]["error"]["message"]
    response_id = events[0]["response"]["id"]
    stored = admin_sync.get(f"/v1/responses/{response_id}").json()
    assert stored["status"] == "failed" and "revoked" in stored["error"]["message"]


async def test_a_background_response_is_stopped(
    server: LiveServer, admin: httpx.AsyncClient
) -> None:
    """Background work of the key stops too: its job was started by the key's request."""
    key = await new_key(admin, "background")
    async with openai_client(server, key) as client:
        job = await client.responses.create(
            model=MODEL, input=PROMPT, max_output_tokens=LONG, temperature=0, background=True
        )
        await revoke_in_the_store(server, "background")
    deadline = time.monotonic() + BY_STORE + IDLE
    while True:
        stored = (await admin.get(f"{server.url}/v1/responses/{job.id}")).json()
        if stored["status"] != "in_progress" and stored["status"] != "queued":
            break
        assert time.monotonic() < deadline, "the background response went on"
        await asyncio.sleep(0.1)
    assert stored["status"] == "failed" and "revoked" in stored["error"]["message"]
