"""`hearth keys create | list | revoke` against a SQLite file: the key is printed once and
never stored or listed; limits, expiry and revocation show in the list."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hearth.cli import main
from hearth.services.keys import digest
from hearth.store import Store
from tests.test_cli import _popen

Run = tuple[int, str, str]


@pytest.fixture
def hearth(tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(*args: str) -> Run:
        code = main([*args, "--data-dir", str(tmp_path / "data")])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def stored_rows(tmp_path: Path) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hearth.db'}")
        try:
            keys = await store.api_keys.all()
            return [{c: getattr(k, c) for c in ("name", "prefix", "digest")} for k in keys]
        finally:
            await store.close()

    return asyncio.run(read())


def test_create_prints_the_key_once_and_stores_its_digest(hearth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = hearth("keys", "create", "--name", "alice")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("hth_") and len(key) > 40 and "\n" not in key
    assert "alice" in err and key not in err and "only this once" in err
    [row] = stored_rows(tmp_path)
    assert row == {"name": "alice", "prefix": key[:12], "digest": digest(key).hex()}
    database = (tmp_path / "data" / "hearth.db").read_bytes()
    assert key.encode() not in database
    code, listed, _ = hearth("keys", "list")
    assert code == 0 and key[:12] in listed and "alice" in listed
    assert key not in listed and digest(key).hex() not in listed
    # A second key gets another value.
    assert hearth("keys", "create", "--name", "bob")[1].strip() != key


def test_list_shows_limits_expiry_and_use(hearth) -> None:  # type: ignore[no-untyped-def]
    code, _, err = hearth(
        "keys", "create", "--name", "limited", "--rpm", "60", "--tpm", "5000",
        "--max-concurrent", "2", "--models", "qwen, llama", "--budget-tokens", "100000",
        "--budget-period", "week", "--expires", "2999-01-31", "--admin",
    )  # fmt: skip
    assert code == 0, err
    hearth("keys", "create", "--name", "plain")
    code, out, _ = hearth("keys", "list")
    header, limited, plain = out.strip().splitlines()
    assert header.split()[:3] == ["PREFIX", "NAME", "LIMITS"]
    assert header.split()[3:] == ["CREATED", "LAST", "USED", "EXPIRES", "REVOKED"]
    for part in ("rpm=60", "tpm=5000", "concurrent=2", "budget=100000/week", "models=qwen,llama"):
        assert part in limited
    assert "admin" in limited and "2999-01-31 00:00" in limited and "never" in limited
    assert plain.split()[1:3] == ["plain", "-"] and "admin" not in plain


def test_revoke_by_name_or_prefix(hearth) -> None:  # type: ignore[no-untyped-def]
    hearth("keys", "create", "--name", "a")
    key_b = hearth("keys", "create", "--name", "b")[1].strip()
    code, out, _ = hearth("keys", "revoke", "a")
    assert code == 0 and "revoked key 'a'" in out
    code, out, _ = hearth("keys", "revoke", key_b[:12])
    assert code == 0 and "revoked key 'b'" in out
    code, out, _ = hearth("keys", "revoke", "a")
    assert code == 0 and "already revoked" in out
    rows = hearth("keys", "list")[1].strip().splitlines()[1:]
    assert all(row.split()[-1] != "-" for row in rows)  # each has its revoked time


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["revoke", "nobody"], "no key is named or prefixed 'nobody'"),
        (["create", "--name", "x", "--expires", "2020-01-01"], "in the past"),
        (["create", "--name", "x", "--expires", "soon"], "is not a date"),
        (["create", "--name", "x", "--budget-tokens", "10"], "go together"),
    ],
)
def test_mistakes_are_one_clear_line(hearth, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = hearth("keys", *args)
    assert code == 2 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("hearth: error: ") and message in line


def test_a_name_is_taken_once(hearth) -> None:  # type: ignore[no-untyped-def]
    assert hearth("keys", "create", "--name", "dup")[0] == 0
    code, out, err = hearth("keys", "create", "--name", "dup")
    assert code == 2 and out == ""
    assert err.strip() == "hearth: error: a key named 'dup' already exists"


def test_limits_must_be_positive(hearth) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        hearth("keys", "create", "--name", "x", "--rpm", "0")
    assert exited.value.code == 2


def test_serve_requires_a_key_once_the_database_has_one(hearth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No "no API key" warning on a public host, and the banner says a key is required."""
    hearth("keys", "create", "--name", "only")
    with _popen(["--host", "0.0.0.0", "--port", "0"], tmp_path) as proc:
        try:
            assert proc.stdout is not None
            seen = []
            while not seen or not seen[-1].lstrip().startswith("auth"):
                line = proc.stdout.readline()
                assert line, "".join(seen)
                seen.append(line)
            assert seen[-1].split() == ["auth", "API", "key", "required"]
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    assert "warning" not in err
