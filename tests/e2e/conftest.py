from __future__ import annotations

from collections.abc import Iterator

import ollama
import openai
import pytest

from hearth.core.model_spec import ModelSpec
from tests.conftest import LiveServer, make_settings
from tests.engine.tiny_reasoner import BRACKETS_SCRIPT, TinyReasoner, write_tiny_reasoner
from tests.postgres import PostgresServer


@pytest.fixture(scope="session")
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture(scope="session")
def ollama_client(live_server: LiveServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=live_server.url) as c:
        yield c


@pytest.fixture(scope="session")
def pg_live_server(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[LiveServer]:
    """The bundled model behind a server that keeps its state in PostgreSQL."""
    url = postgres.create_database("hearth_live")
    settings = make_settings(tmp_path_factory.mktemp("live-pg"), database_url=url)
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def stored_client(request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    """A client of a live server on each kind of database."""
    fixture = "live_server" if request.param == "sqlite" else "pg_live_server"
    server: LiveServer = request.getfixturevalue(fixture)
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def reasoning_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_reasoner: TinyReasoner
) -> Iterator[LiveServer]:
    """The tiny reasoning models behind a real server: "reasoner" (<think>, Qwen3's
    template), "ministral" ([THINK], Ministral 3 Reasoning's) and "plain" (the first with
    its reasoning passed through as the answer). Each writes REASONING, then ANSWER."""
    ministral = write_tiny_reasoner(
        tmp_path_factory.mktemp("ministral") / "tiny-ministral.gguf",
        "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
        BRACKETS_SCRIPT,
    )
    entries = (
        ModelSpec(name="reasoner", path=tiny_reasoner.path, ctx_size=1024, parallel=2),
        ModelSpec(name="ministral", path=ministral.path, ctx_size=1024),
        ModelSpec(name="plain", path=tiny_reasoner.path, ctx_size=1024, reasoning_format="none"),
    )
    settings = make_settings(tmp_path_factory.mktemp("reasoning"), model_entries=entries)
    server = LiveServer(settings).start()
    yield server
    server.stop()
