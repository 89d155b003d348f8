"""`hearth keys usage`: the table of the usage log, filtered by key and first day, and a
bad date as one line with exit code 2."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hearth.cli import main
from hearth.core.config import Settings
from hearth.store import Store
from hearth.store.usage import Use

DAY = 1_795_000_000 - 1_795_000_000 % 86_400  # 2026-11-18


def record(data_dir: Path, *uses: Use) -> None:
    async def add() -> None:
        store = Store(Settings(data_dir=data_dir).store_url)
        try:
            await store.upgrade()
            await store.usage.add(uses)
        finally:
            await store.close()

    asyncio.run(add())


def usage(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[list[str]]:
    assert main(["keys", "usage", *args, "--data-dir", str(data_dir)]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def test_the_table_sums_by_day_key_and_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = ["DAY", "KEY", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "CACHED"]
    assert usage(tmp_path, capsys) == [header]  # an empty log: the header alone
    record(
        tmp_path,
        Use(DAY, "key_1", "alice", "qwen", "openai", "ok", 10, 20, 4),
        Use(DAY + 60, "key_1", "alice", "qwen", "ollama", "cancelled", 5, 1, 0),
        Use(DAY + 86_400, None, "static", "qwen", "openai", "ok", 7, 3, 0),
    )
    assert usage(tmp_path, capsys) == [
        header,
        ["2026-11-18", "alice", "qwen", "2", "15", "21", "4"],
        ["2026-11-19", "static", "qwen", "1", "7", "3", "0"],
    ]
    assert usage(tmp_path, capsys, "--key", "alice")[1:] == [
        ["2026-11-18", "alice", "qwen", "2", "15", "21", "4"]
    ]
    assert usage(tmp_path, capsys, "--since", "2026-11-19")[1:] == [
        ["2026-11-19", "static", "qwen", "1", "7", "3", "0"]
    ]


def test_a_bad_date_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["keys", "usage", "--since", "last week", "--data-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == "hearth: error: --since 'last week' is not a date (2026-12-01)\n"
