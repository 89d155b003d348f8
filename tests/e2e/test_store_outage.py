"""PostgreSQL going away under a running server, and coming back: what needs the store
answers 503 `database_unavailable` with Retry-After (never a 500), what does not keep
working, and nothing stored is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hearth.engine.fake import FakeBackend
from tests.conftest import LiveServer, make_settings, registry_of
from tests.e2e.ws_client import next_frame, open_socket, send, until_end
from tests.postgres import PostgresServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    # Its own server: this test stops it, which the session's shared one must never be.
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(pg: PostgresServer, tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path, database_url=pg.create_database("outage"))
    live = LiveServer(settings, registry_of(FakeBackend("m", "kept words"))).start()
    yield live
    live.stop()


def unavailable(exc: openai.APIStatusError) -> bool:
    return (
        exc.status_code == 503
        and exc.response.headers.get("retry-after") == "1"
        and exc.body["code"] == "database_unavailable"  # type: ignore[index]
    )


async def ws_turns(live: LiveServer, conversation: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with open_socket(live) as ws:
        chat = {"type": "chat", "model": "m", "messages": [{"role": "user", "content": "hi"}]}
        await send(ws, {**chat, "id": "stored", "conversation": conversation})
        refused = await next_frame(ws)
        await send(ws, {**chat, "id": "plain"})  # the connection stays up
        done, _ = await until_end(ws, "plain")
    return refused, done


def test_a_database_outage_is_503_and_loses_nothing(pg: PostgresServer, server: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    conv = client.conversations.create()
    kept = client.responses.create(model="m", input="hello", conversation=conv.id)
    assert kept.output_text == "kept words"

    pg.halt()
    with pytest.raises(openai.APIStatusError) as got:
        client.responses.retrieve(kept.id)
    assert unavailable(got.value)
    with pytest.raises(openai.APIStatusError) as got:
        client.responses.create(model="m", input="again", conversation=conv.id)
    assert unavailable(got.value)
    with pytest.raises(openai.APIStatusError) as got:
        client.conversations.items.list(conv.id)
    assert unavailable(got.value)
    refused, done = asyncio.run(ws_turns(server, conv.id))
    assert refused["type"] == "error" and refused["code"] == "database_unavailable"
    assert done["type"] == "done"
    # What needs no store goes on as before.
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content == "kept words"
    ollama = httpx.post(
        f"{server.url}/api/chat",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": False},
    )
    assert ollama.status_code == 200 and ollama.json()["message"]["content"] == "kept words"

    pg.resume()
    assert client.responses.retrieve(kept.id).output_text == "kept words"
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "message"]  # the one turn, whole
    again = client.responses.create(model="m", input="again", conversation=conv.id)
    assert again.status == "completed"
    assert len(client.conversations.items.list(conv.id).data) == 4
