from __future__ import annotations

from collections.abc import Iterator

import ollama
import openai
import pytest

from tests.conftest import LiveServer, make_settings
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
