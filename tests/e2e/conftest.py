from __future__ import annotations

from collections.abc import Iterator

import ollama
import openai
import pytest

from tests.conftest import LiveServer


@pytest.fixture(scope="session")
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture(scope="session")
def ollama_client(live_server: LiveServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=live_server.url) as c:
        yield c
