"""--max-loaded-models 1 with two models (the bundled GGUF under two names): requests
that alternate between them are each served, and only one is ever loaded."""

from __future__ import annotations

import os
import subprocess
import sys
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


def _hearth_models(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    command = [sys.executable, "-m", "hearth", "models", "--url", url]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


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


def test_hearth_models_shows_the_live_state(server: LiveServer) -> None:
    httpx.post(f"{server.url}/admin/models/two/load").raise_for_status()
    done = _hearth_models(server.url)
    assert done.returncode == 0, done.stderr
    header, *rows = [line.split() for line in done.stdout.splitlines()]
    assert header[:2] == ["MODEL", "STATE"]
    assert [row[:3] for row in rows] == [["one", "unloaded", "0"], ["two", "loaded", "0"]]
    gone = _hearth_models("http://127.0.0.1:9")
    assert gone.returncode == 2 and gone.stderr.startswith("hearth: error: no Hearth answers at")
