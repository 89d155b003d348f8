from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.conftest import LiveServer


@pytest.fixture(scope="session")
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c
