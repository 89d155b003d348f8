"""--max-loaded-models 1 with two models (the bundled GGUF under two names): requests
that alternate between them are each served, and only one is ever loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hearth.core.model_spec import ModelSpec
from tests.conftest import LiveServer, make_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[LiveServer]:
    entries = tuple(ModelSpec(name=n, path=model_path, ctx_size=512) for n in ("one", "two"))
    settings = make_settings(
        tmp_path_factory.mktemp("many"), model_entries=entries, max_loaded_models=1
    )
    live = LiveServer(settings)
    yield live.start()
    live.stop()


def _loaded(server: LiveServer) -> tuple[list[str], list[str]]:
    """What /api/ps and /health say is loaded."""
    ps = httpx.get(f"{server.url}/api/ps").json()["models"]
    health = httpx.get(f"{server.url}/health").json()["models"]
    assert all(m["context_length"] == 512 and m["expires_at"] for m in ps)
    return [m["name"] for m in ps], [m["id"] for m in health if m["state"] == "loaded"]


def test_alternating_requests_swap_the_one_loaded_model(server: LiveServer) -> None:
    assert _loaded(server) == (["one"], ["one"])  # preloading stopped at the limit
    with openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0) as client:
        for model in ("two", "one", "two"):
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "Say hello."}],
                max_tokens=4,
                temperature=0,
            )
            assert reply.model == model and reply.usage.completion_tokens > 0
            assert _loaded(server) == ([model], [model])
