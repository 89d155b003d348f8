"""Keys from the database against a real server: a key made by `hearth keys create` works
with the OpenAI client; a wrong, revoked (from another process) or expired key gets 401;
the first key created closes a server that was open."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hearth.cli import main
from hearth.core.ids import unix_now
from hearth.engine.fake import FakeBackend
from hearth.store import Store
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.stored_keys import stored_key


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path / "data")
    live = LiveServer(settings, registry_of(FakeBackend(MODEL))).start()
    yield live
    live.stop()


def create(data_dir: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["keys", "create", "--name", name, "--data-dir", str(data_dir)]) == 0
    return capsys.readouterr().out.strip()


def revoke_in_another_process(data_dir: Path, name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    done = subprocess.run(
        [sys.executable, "-m", "hearth", "keys", "revoke", name, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def status(server: LiveServer, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{server.url}/v1/models", headers=headers, timeout=30).status_code


def until_status(server: LiveServer, key: str | None, wanted: int, within: float) -> float:
    """Seconds until a request with `key` gets `wanted`; fails past `within`."""
    start = time.monotonic()
    while (got := status(server, key)) != wanted:
        assert time.monotonic() - start < within, f"still {got} after {within} s"
        time.sleep(0.05)
    return time.monotonic() - start


def chat(server: LiveServer, key: str) -> str:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as client:
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=8
        )
    return reply.choices[0].message.content or ""


def test_a_created_key_works_and_a_revoke_stops_it_within_a_second(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    assert status(server, None) == 200  # no key anywhere yet: open
    key = create(data_dir, "client", capsys)
    # The first key closes the server (its "no keys" answer is cached for a second).
    until_status(server, None, 401, within=2.0)
    assert chat(server, key)
    with pytest.raises(openai.AuthenticationError):
        chat(server, key[:-1] + ("A" if key[-1] != "A" else "B"))
    with pytest.raises(openai.AuthenticationError):
        chat(server, "sk-not-a-hearth-key")

    revoke_in_another_process(data_dir, "client")
    assert until_status(server, key, 401, within=1.5) <= 1.5
    with pytest.raises(openai.AuthenticationError):
        chat(server, key)
    assert status(server, None) == 401  # revoking the last key does not open the server


def test_an_expired_key_is_refused(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, row = stored_key("old", expires_at=unix_now() - 1)

    async def add_expired() -> None:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hearth.db'}")
        try:
            await store.api_keys.add(row)
        finally:
            await store.close()

    asyncio.run(add_expired())
    current = create(tmp_path / "data", "current", capsys)
    until_status(server, current, 200, within=2.0)
    assert status(server, key) == 401
    with pytest.raises(openai.AuthenticationError):
        chat(server, key)


def test_last_use_is_recorded(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    key = create(data_dir, "used", capsys)
    assert main(["keys", "list", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-3] == "never"
    until_status(server, key, 200, within=2.0)
    deadline = time.monotonic() + 5
    while True:
        assert main(["keys", "list", "--data-dir", str(data_dir)]) == 0
        if capsys.readouterr().out.splitlines()[1].split()[-3] != "never":
            break
        assert time.monotonic() < deadline, "last use never recorded"
        time.sleep(0.1)
