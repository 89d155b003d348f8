"""A model entry of `hearth.toml` (`[[models]]`): what is served under a name and how.

    [[models]]
    name = "qwen"
    path = "/models/qwen2.5-7b-instruct-q4_k_m.gguf"
    aliases = ["qwen2.5"]
    options = { temperature = 0.7, top_p = 0.9 }
    keep_alive = "30m"
    parallel = 4

    [[models]]
    name = "llama-70b"
    backend = "upstream"
    urls = ["http://gpu-1:8000/v1", { url = "http://gpu-2:8000/v1", api_key = "…", weight = 2 }]
    upstream_model = "meta-llama/Llama-3.3-70B-Instruct"
    first_token_timeout = 300      # also connect_timeout, token_timeout, health_interval

`--model NAME=PATH` and the `[models]` table are the short form of a llama_cpp entry with
nothing else set. A bad entry is one line naming the entry and the field (ConfigError).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
# Sampling defaults an entry may set, in the engine's names (engine/types.SamplingParams,
# plus the reply's length and stop strings): what a request does not say, the entry says.
OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": int,
    "min_p": (int, float),
    "seed": int,
    "presence_penalty": (int, float),
    "frequency_penalty": (int, float),
    "repetition_penalty": (int, float),
    "repeat_last_n": int,
    "max_tokens": int,
    "stop": list,
}


class ConfigError(ValueError):
    """A bad option value or config file: reported as one line, exit code 2."""


def valid_model_name(name: str) -> bool:
    return bool(_NAME.match(name))


def parse_keep_alive(value: object) -> float | None:
    """Ollama's keep_alive: seconds as a number, or "300ms", "30s", "5m", "1h"; a
    negative value keeps the model loaded for good (None), 0 unloads it when idle."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5m, 30s or -1")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 5m, 30s or -1")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return None if seconds < 0 else seconds


class UpstreamMember(BaseModel):
    """One engine of an upstream pool: its OpenAI-compatible base URL (…/v1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    api_key: str | None = None
    weight: float = Field(1.0, gt=0, le=1000)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    backend: Literal["llama_cpp", "upstream"] = "llama_cpp"
    path: Path | None = None
    urls: tuple[UpstreamMember, ...] = ()
    upstream_model: str | None = None
    aliases: tuple[str, ...] = ()
    system: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # None: the server's --keep-alive; "forever": never unloaded while served.
    keep_alive: float | Literal["forever"] | None = None
    parallel: int | None = Field(None, ge=1, le=256)
    ctx_size: int | None = Field(None, ge=64, le=1 << 22)
    # An upstream pool's timeouts, in seconds: to connect to a member; from sending a
    # request to its first generated token (a member's queue counts); between tokens.
    connect_timeout: float = Field(5.0, gt=0, le=600)
    first_token_timeout: float = Field(120.0, gt=0, le=3600)
    token_timeout: float = Field(60.0, gt=0, le=3600)
    # Seconds between health checks of the pool's members; a member that fails one is
    # checked again after twice as long each time, up to 32 intervals.
    health_interval: float = Field(10.0, gt=0, le=3600)
    # How the model marks its reasoning (hearth.chat.reasoning): "auto" reads it from the
    # chat template; "none" passes everything through as the answer; or a family.
    reasoning_format: Literal["auto", "none", "think", "harmony", "think_brackets"] = "auto"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not valid_model_name(value):
            raise ValueError(f"{value!r}: use letters, digits and . _ : / - (at most 128)")
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for alias in value:
            if not valid_model_name(alias):
                raise ValueError(f"{alias!r}: use letters, digits and . _ : / - (at most 128)")
        return value

    @field_validator("urls", mode="before")
    @classmethod
    def _members(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"url": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("path")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, value: Any) -> Any:
        if value is None or value == "forever":
            return value
        seconds = parse_keep_alive(value)
        return "forever" if seconds is None else seconds

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, option in value.items():
            expected = OPTION_TYPES.get(key)
            if expected is None:
                raise ValueError(f"unknown option {key!r} (known: {', '.join(OPTION_TYPES)})")
            if isinstance(option, bool) or not isinstance(option, expected):
                raise ValueError(f"option {key!r} has the wrong type")
            if key == "stop" and not all(isinstance(s, str) for s in option):
                raise ValueError("option 'stop' must be a list of strings")
        return value

    @model_validator(mode="after")
    def _backend_fields(self) -> ModelSpec:
        if self.backend == "llama_cpp":
            if self.path is None:
                raise ValueError("path: a llama_cpp model needs the path of its GGUF file")
            if self.urls or self.upstream_model:
                raise ValueError("urls and upstream_model are for backend = 'upstream'")
        else:
            if not self.urls:
                raise ValueError("urls: an upstream model needs at least one member URL")
            if self.path is not None:
                raise ValueError("path is for backend = 'llama_cpp'")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _where(entry: Any, index: int) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"model entry {name!r}" if isinstance(name, str) else f"model entry #{index + 1}"


def parse_entries(raw: Any) -> tuple[ModelSpec, ...]:
    """`[[models]]` tables → specs; one line naming the first bad entry and field."""
    if not isinstance(raw, list | tuple):
        raise ConfigError("[[models]] must be a list of tables")
    specs: list[ModelSpec] = []
    for index, entry in enumerate(raw):
        if isinstance(entry, ModelSpec):
            specs.append(entry)
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"{_where(entry, index)}: expected a table")
        try:
            specs.append(ModelSpec(**{k.replace("-", "_"): v for k, v in entry.items()}))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            where = f"{field}: " if field and not msg.startswith(f"{field}:") else ""
            raise ConfigError(f"{_where(entry, index)}: {where}{msg}") from None
    return tuple(specs)


def check_unique(specs: tuple[ModelSpec, ...]) -> None:
    seen: set[str] = set()
    for spec in specs:
        for name in spec.names:
            if name in seen:
                raise ConfigError(f"model entry {spec.name!r}: the name {name!r} is used twice")
            seen.add(name)
