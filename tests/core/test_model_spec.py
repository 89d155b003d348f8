from pathlib import Path

import pytest

from hearth.core.config import ConfigError, load_settings
from hearth.core.model_spec import ModelSpec, parse_entries


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hearth.toml"
    path.write_text(text)
    return path


def test_model_entries_from_the_config_file(tmp_path: Path) -> None:
    cfg = _toml(
        tmp_path,
        """
[[models]]
name = "qwen"
path = "~/models/qwen.gguf"
aliases = ["qwen2.5", "q"]
system = "Be brief."
options = { temperature = 0.2, max_tokens = 64, stop = ["END"] }
keep-alive = "30m"
parallel = 4
ctx_size = 4096

[[models]]
name = "big"
backend = "upstream"
urls = ["http://gpu-1:8000/v1/", { url = "https://gpu-2/v1", api_key = "k", weight = 2 }]
upstream_model = "meta/llama-70b"
keep_alive = -1
first_token_timeout = 30
health_interval = 2.5
""",
    )
    models = load_settings(config_path=cfg).served_models()
    assert list(models) == ["qwen", "big"]
    qwen, big = models["qwen"], models["big"]
    assert qwen.path == Path("~/models/qwen.gguf").expanduser()
    assert qwen.names == ("qwen", "qwen2.5", "q")
    assert (qwen.keep_alive, qwen.parallel, qwen.ctx_size) == (1800.0, 4, 4096)
    assert qwen.options == {"temperature": 0.2, "max_tokens": 64, "stop": ["END"]}
    assert big.backend == "upstream" and big.keep_alive == "forever"
    assert [(m.url, m.api_key, m.weight) for m in big.urls] == [
        ("http://gpu-1:8000/v1", None, 1.0),
        ("https://gpu-2/v1", "k", 2.0),
    ]
    timeouts = (big.connect_timeout, big.first_token_timeout, big.token_timeout)
    assert timeouts == (5.0, 30.0, 60.0) and big.health_interval == 2.5


def test_short_forms_and_entries_together(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, '[[models]]\nname = "b"\npath = "/x/b.gguf"\n')
    models = load_settings({"models": ["a=/x/a.gguf"]}, config_path=cfg).served_models()
    assert {name: spec.path for name, spec in models.items()} == {
        "a": Path("/x/a.gguf"),
        "b": Path("/x/b.gguf"),
    }


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ('name = "q"', "model entry 'q': path"),
        ('name = "q"\npath = "/x"\ncolour = "red"', "model entry 'q': colour"),
        ('name = "bad name"\npath = "/x"', "model entry 'bad name': name"),
        ('path = "/x"', "model entry #1: name"),
        ('name = "q"\nbackend = "vllm"\npath = "/x"', "model entry 'q': backend"),
        ('name = "q"\nbackend = "upstream"', "model entry 'q': urls"),
        ('name = "q"\nbackend = "upstream"\nurls = ["ftp://x"]', "model entry 'q': urls.0.url"),
        ('name = "q"\npath = "/x"\nurls = ["http://x"]', "for backend = 'upstream'"),
        ('name = "q"\npath = "/x"\noptions = { colour = 1 }', "unknown option 'colour'"),
        ('name = "q"\npath = "/x"\noptions = { top_k = "many" }', "'top_k' has the wrong type"),
        ('name = "q"\npath = "/x"\nkeep_alive = "soon"', "model entry 'q': keep_alive"),
        ('name = "q"\npath = "/x"\nparallel = 0', "model entry 'q': parallel"),
        ('name = "q"\npath = "/x"\naliases = ["a b"]', "model entry 'q': aliases"),
        ('name = "q"\nurls = ["http://x"]\nbackend = "upstream"\ntoken_timeout = 0', "token_"),
    ],
)
def test_a_bad_entry_is_one_line_naming_entry_and_field(
    tmp_path: Path, entry: str, needle: str
) -> None:
    cfg = _toml(tmp_path, f"[[models]]\n{entry}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config_path=cfg)
    message = str(info.value)
    assert needle in message, message
    assert "\n" not in message


def test_a_name_used_twice_is_refused(tmp_path: Path) -> None:
    cfg = _toml(
        tmp_path,
        '[[models]]\nname = "a"\npath = "/x"\naliases = ["b"]\n'
        '[[models]]\nname = "b"\npath = "/y"\n',
    )
    with pytest.raises(ConfigError, match="model entry 'b': the name 'b' is used twice"):
        load_settings(config_path=cfg).served_models()
    flags = load_settings(
        {"models": ["a=/z"]}, config_path=_toml(tmp_path, '[[models]]\nname = "a"\npath = "/x"\n')
    )
    with pytest.raises(ConfigError, match="'a' is used twice"):
        flags.served_models()


def test_entries_parse_without_a_file() -> None:
    (spec,) = parse_entries([{"name": "m", "path": "/m.gguf", "keep_alive": 0}])
    assert spec == ModelSpec(name="m", path=Path("/m.gguf"), keep_alive=0.0)
    with pytest.raises(ConfigError, match="list of tables"):
        parse_entries({"name": "m"})


def test_an_entry_names_its_reasoning_format() -> None:
    (auto, off) = parse_entries(
        [
            {"name": "a", "path": "/a.gguf"},
            {"name": "b", "path": "/b.gguf", "reasoning-format": "none"},
        ]
    )
    assert (auto.reasoning_format, off.reasoning_format) == ("auto", "none")
    with pytest.raises(ConfigError, match="model entry 'c': reasoning_format"):
        parse_entries([{"name": "c", "path": "/c.gguf", "reasoning_format": "loud"}])
