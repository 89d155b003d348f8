from pathlib import Path

import pytest

from hearth.core.config import (
    BUNDLED_MODEL_NAME,
    ConfigError,
    Settings,
    bundled_model_path,
    load_settings,
)


def test_defaults_work_on_a_laptop() -> None:
    s = load_settings()
    assert s.host == "127.0.0.1"
    assert s.port == 8000
    assert s.is_loopback
    assert s.api_keys == []
    (spec,) = s.served_models().values()
    assert (spec.name, spec.backend, spec.path) == (
        BUNDLED_MODEL_NAME,
        "llama_cpp",
        bundled_model_path(),
    )


def test_precedence_flags_over_env_over_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    cfg = tmp_path / "hearth.toml"
    cfg.write_text('port = 7001\nctx-size = 1024\nthreads = 3\napi_keys = ["from-toml-key"]\n')
    # the file alone
    s = load_settings()
    assert (s.port, s.ctx_size, s.threads, s.api_keys) == (7001, 1024, 3, ["from-toml-key"])
    # the environment beats the file
    monkeypatch.setenv("HEARTH_PORT", "7002")
    monkeypatch.setenv("HEARTH_API_KEYS", "env-key-one,env-key-two")
    s = load_settings()
    assert (s.port, s.ctx_size, s.api_keys) == (7002, 1024, ["env-key-one", "env-key-two"])
    # flags beat both
    s = load_settings({"port": "7003", "api_keys": ["flag-key-1"], "ctx_size": None})
    assert (s.port, s.ctx_size, s.api_keys) == (7003, 1024, ["flag-key-1"])


def test_config_path_from_env_and_explicit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text("port = 1111\n")
    b.write_text("port = 2222\n")
    monkeypatch.setenv("HEARTH_CONFIG", str(a))
    assert load_settings().port == 1111
    assert load_settings(config_path=b).port == 2222


def test_models_parse_from_every_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert load_settings({"models": ["a=/x/a.gguf", "b=/x/b.gguf"]}).models == {
        "a": Path("/x/a.gguf"),
        "b": Path("/x/b.gguf"),
    }
    monkeypatch.setenv("HEARTH_MODELS", "c=/x/c.gguf")
    assert load_settings().models == {"c": Path("/x/c.gguf")}
    monkeypatch.delenv("HEARTH_MODELS")
    (tmp_path / "hearth.toml").write_text('[models]\n"d:7b" = "/x/d.gguf"\n')
    assert load_settings().models == {"d:7b": Path("/x/d.gguf")}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"port": "70000"}, "port"),
        ({"ctx_size": "lots"}, "ctx_size"),
        ({"models": ["no-equals-sign"]}, "NAME=PATH"),
        ({"models": ["bad name=/x.gguf"]}, "model name"),
        ({"api_keys": ["short"]}, "at least 8"),
        ({"log_level": "loud"}, "log_level"),
        ({"parallel": "32", "batch_size": "16"}, "must not exceed batch_size"),
    ],
)
def test_bad_values_are_one_clear_error(overrides: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_toml_and_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_path=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 3\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load_settings(config_path=unknown)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(config_path=tmp_path / "missing.toml")


def test_non_loopback_is_detected() -> None:
    assert not Settings(host="0.0.0.0").is_loopback
    assert Settings(host="::1").is_loopback


def test_metrics_are_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert load_settings().metrics is True
    (tmp_path / "hearth.toml").write_text("metrics = false\n")
    assert load_settings().metrics is False
    monkeypatch.setenv("HEARTH_METRICS", "true")
    assert load_settings().metrics is True
    assert load_settings({"metrics": False}).metrics is False
