"""`hearth` as a user runs it: a real process, its output and exit code."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from hearth.cli import _bind, configure_logging
from hearth.core.config import Settings
from hearth.core.logtext import Content, quote_prompts
from hearth.store.migrate import alembic_config
from tests.conftest import MODEL
from tests.e2e.misbehaving import Misbehaving
from tests.postgres import PostgresServer

# The newest migration: every one chains on the one before.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def hearth(*args: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env["HEARTH_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hearth: error: ")
    return lines[0]


def test_missing_model_file(tmp_path: Path) -> None:
    line = one_clear_line(hearth("serve", "--model", "x=/no/such/file.gguf", tmp_path=tmp_path))
    assert "/no/such/file.gguf" in line


def test_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all")
    assert "not a GGUF file" in one_clear_line(
        hearth("serve", "--model", f"x={fake}", tmp_path=tmp_path)
    )


def test_unreadable_model_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked.gguf"
    locked.write_bytes(b"GGUF....")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: make it a directory instead
        locked.chmod(0o644)
        locked.unlink()
        locked.mkdir()
    assert "locked.gguf" in one_clear_line(
        hearth("serve", "--model", f"x={locked}", tmp_path=tmp_path)
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "99999"], "port"),
        (["--ctx-size", "many"], "ctx_size"),
        (["--api-key", "short"], "at least 8"),
        (["--model", "no-path"], "NAME=PATH"),
        (["--config", "/no/such.toml"], "cannot read config"),
    ],
)
def test_bad_option_values(tmp_path: Path, args: list[str], needle: str) -> None:
    assert needle in one_clear_line(hearth("serve", *args, tmp_path=tmp_path))


def test_bad_environment_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env["HEARTH_PARALLEL"] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "hearth", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert "parallel" in one_clear_line(result)


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_clear_line(hearth("serve", "--port", str(port), tmp_path=tmp_path))
    assert f"port {port}" in line and "in use" in line


def test_models_subcommand_reads_the_same_settings(tmp_path: Path) -> None:
    result = hearth("models", tmp_path=tmp_path)
    assert result.returncode == 0
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "BACKEND", "SIZE", "QUANT", "CONTEXT", "WHERE"]
    assert row.split()[:6] == [MODEL, "llama_cpp", "98.4", "MB", "Q4_1", "8192"]
    (tmp_path / "hearth.toml").write_text('[models]\nalias = "/no/such.gguf"\n')
    assert "/no/such.gguf" in one_clear_line(hearth("models", tmp_path=tmp_path))
    (tmp_path / "hearth.toml").write_text('[[models]]\nname = "q"\npath = "/x.gguf"\nnope = 1\n')
    line = one_clear_line(hearth("models", tmp_path=tmp_path))
    assert "model entry 'q': nope" in line


def test_models_shows_each_pool_member_state(tmp_path: Path) -> None:
    live = Misbehaving("fails")  # answers its health checks: only requests fail
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    (tmp_path / "hearth.toml").write_text(
        f'[[models]]\nname = "pool"\nbackend = "upstream"\nconnect_timeout = 2\n'
        f'urls = ["{live.url}", {{ url = "{dead}", weight = 3 }}]\n'
    )
    try:
        result = hearth("models", tmp_path=tmp_path)
    finally:
        live.stop()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:2] == ["pool", "upstream"]
    at = lines.index("pool: pool members")
    assert lines[at + 1] == f"  {live.url}\tweight 1\tup"
    assert lines[at + 2] == f"  {dead}\tweight 3\tdown (health check: connection refused)"


def _popen(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    small = ["--ctx-size", "2048", "--parallel", "2", "--data-dir", str(tmp_path / "data")]
    return subprocess.Popen(
        [sys.executable, "-m", "hearth", "serve", *args, *small],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def test_serve_prints_where_it_serves_and_answers(tmp_path: Path) -> None:
    with _popen(["--port", "0"], tmp_path) as proc:
        try:
            assert proc.stdout is not None
            seen = []
            url = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                seen.append(line)
                if line.startswith("Hearth is serving"):
                    url = line.split(" on ")[-1].strip()
                    break
            assert url is not None, "".join(seen)
            assert url.startswith("http://127.0.0.1:")
            assert any(str(tmp_path / "data") in s for s in seen)
            assert any(MODEL in s for s in seen)
            models = httpx.get(f"{url}/v1/models").json()
            assert [m["id"] for m in models["data"]] == [MODEL]
            assert httpx.get(f"{url}/metrics").status_code == 200  # on by default
            assert (tmp_path / "data").is_dir()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_every_bool_option_has_a_no_flag(tmp_path: Path) -> None:
    result = hearth("serve", "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "--metrics, --no-metrics" in result.stdout


def test_prompt_text_reaches_log_lines_only_with_log_prompts() -> None:
    def logged() -> str:
        return logging.LogRecord("t", 30, "", 0, "%s", (Content("hi there"),), None).getMessage()

    try:
        configure_logging(Settings(log_prompts=True))
        assert logged() == "'hi there'"
        configure_logging(Settings())
        assert "hi there" not in logged()
    finally:
        quote_prompts(False)


def test_the_default_bind_is_loopback_only() -> None:
    # The socket `serve` listens on, for the default host: no other interface reaches it.
    sock = _bind(Settings.model_fields["host"].default, 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_warns_without_key_on_a_public_host(tmp_path: Path) -> None:
    with _popen(["--host", "0.0.0.0", "--port", "0"], tmp_path) as proc:
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            assert "warning" in first and "API key" in first
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_db_upgrade_migrates_the_configured_database(tmp_path: Path) -> None:
    done = hearth("db", "upgrade", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"hearth.db is at revision {HEAD}" in done.stdout
    assert (tmp_path / "data" / "hearth.db").is_file()
    again = hearth("db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/x.db",
                   tmp_path=tmp_path)  # fmt: skip
    assert again.returncode == 0 and (tmp_path / "x.db").is_file()


def test_db_upgrade_reports_an_unreachable_database(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://hearth:secret@127.0.0.1:{port}/hearth"
    done = hearth("db", "upgrade", "--database-url", url, tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("hearth: error: database postgresql+asyncpg://hearth:***@")
    assert "secret" not in done.stderr
    bad = hearth("db", "upgrade", "--database-url", "mysql://x/y", tmp_path=tmp_path)
    assert bad.returncode == 2 and "database_url" in bad.stderr


def test_serve_stops_on_an_unreachable_database(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://hearth@127.0.0.1:{port}/hearth"
    done = hearth("serve", "--port", "0", "--database-url", url, tmp_path=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("hearth: error: database postgresql+asyncpg://")
    assert len(done.stderr.strip().splitlines()) == 1


def test_db_upgrade_on_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database("hearth_cli")
    for _ in range(2):  # the second run finds nothing left to do
        done = hearth("db", "upgrade", "--database-url", url, tmp_path=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith(f"/hearth_cli is at revision {HEAD}")


def test_models_lists_the_models_folder_with_what_the_headers_say(
    tmp_path: Path, model_path: Path
) -> None:
    folder = tmp_path / "data" / "models"
    folder.mkdir(parents=True)
    (folder / "Copied-Q4_1.gguf").write_bytes(model_path.read_bytes())
    (folder / ".partial").mkdir()
    (folder / ".partial" / "half.gguf").write_bytes(b"GGUF")
    lines = hearth("models", tmp_path=tmp_path).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["NAME", MODEL, "copied-q4_1"]
    assert lines[2].split()[1:6] == ["llama_cpp", "98.4", "MB", "Q4_1", "8192"]
