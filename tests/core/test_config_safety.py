"""The options that keep a default install safe: loopback, no CORS, no prompt text in logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.core.config import ConfigError, load_settings


def test_safe_by_default() -> None:
    s = load_settings()
    assert s.host == "127.0.0.1"
    assert s.cors_origins == []
    assert s.log_prompts is False


def test_cors_origins_from_every_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "hearth.toml").write_text('cors_origins = ["https://a.example"]\n')
    assert load_settings().cors_origins == ["https://a.example"]
    monkeypatch.setenv("HEARTH_CORS_ORIGINS", "http://localhost:3000, https://b.example")
    assert load_settings().cors_origins == ["http://localhost:3000", "https://b.example"]
    assert load_settings({"cors_origins": ["*"]}).cors_origins == ["*"]


@pytest.mark.parametrize(
    "origin", ["https://a.example/", "https://a.example/app", "a.example", "ftp://a.example"]
)
def test_an_origin_that_could_never_match_is_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match=r"cors_origins: .* is not an origin"):
        load_settings({"cors_origins": [origin]})


def test_log_prompts_is_a_flag_and_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({"log_prompts": True}).log_prompts is True
    monkeypatch.setenv("HEARTH_LOG_PROMPTS", "1")
    assert load_settings().log_prompts is True
