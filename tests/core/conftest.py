from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings read from no HEARTH_* variable and no ./hearth.toml but the test's own."""
    for key in list(__import__("os").environ):
        if key.startswith("HEARTH_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
