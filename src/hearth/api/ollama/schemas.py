"""Request bodies of the Ollama API (its `api/types.go`), validated on the way in.

Unknown fields and unknown options are ignored, as Ollama does; a known option of the
wrong type is a 400, as it is in Ollama. Fields whose meaning we cannot honour yet are
accepted here and refused by name in `convert`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, field_validator

from hearth.api.fields import one_of
from hearth.core.config import parse_keep_alive
from hearth.engine.registry import DEFAULT, KeepAlive

ROLES = {"system", "user", "assistant", "tool"}


def _whole_float_to_int(value: Any) -> Any:
    # JSON numbers reach Go as float64, so Ollama takes 100.0 for an int; so do we.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict: a string or a bool is not a number (Ollama: `option "x" must be of type ...`).
Int = Annotated[int, Strict(), BeforeValidator(_whole_float_to_int)]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Options(_Body):
    """Ollama's `options`. The runner options (num_ctx, num_gpu, …) are fixed when Hearth
    loads a model, so they are accepted and have no effect per request."""

    # Sampling
    temperature: Float | None = Field(None, ge=0)
    top_p: Float | None = Field(None, ge=0, le=1)
    top_k: Int | None = Field(None, ge=0)
    min_p: Float | None = Field(None, ge=0, le=1)
    typical_p: Float | None = None
    seed: Int | None = None
    num_predict: Int | None = None
    stop: list[str] | str | None = None
    repeat_penalty: Float | None = Field(None, gt=0)
    repeat_last_n: Int | None = Field(None, ge=-1)
    presence_penalty: Float | None = None
    frequency_penalty: Float | None = None
    # Accepted for compatibility; llama.cpp's chain here has no use for them.
    num_keep: Int | None = None
    tfs_z: Float | None = None
    mirostat: Int | None = None
    mirostat_tau: Float | None = None
    mirostat_eta: Float | None = None
    penalize_newline: Bool | None = None
    # Runner options.
    num_ctx: Int | None = Field(None, ge=0)
    num_batch: Int | None = None
    num_gpu: Int | None = None
    main_gpu: Int | None = None
    num_thread: Int | None = None
    numa: Bool | None = None
    low_vram: Bool | None = None
    f16_kv: Bool | None = None
    logits_all: Bool | None = None
    vocab_only: Bool | None = None
    use_mmap: Bool | None = None
    use_mlock: Bool | None = None
    embedding_only: Bool | None = None


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    function: ToolCallFunction


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolDef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = "function"
    function: FunctionDef

    @field_validator("type")
    @classmethod
    def _function_only(cls, value: str) -> str:
        if value != "function":
            raise ValueError(f"tools of type '{value}' are not supported; only 'function' is")
        return value


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Annotated[str, one_of(ROLES)]
    content: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    thinking: str | None = None


class _ModelBody(_Body):
    model: str = ""
    keep_alive: float | str | None = None
    options: Options | None = None

    @field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: float | str | None) -> float | None:
        if value is None:
            return None
        seconds = parse_keep_alive(value)
        return -1.0 if seconds is None else seconds

    @property
    def keep_alive_for(self) -> KeepAlive:
        """The registry's reading: the server default, seconds, or None for good."""
        if self.keep_alive is None:
            return DEFAULT
        seconds = float(self.keep_alive)
        return None if seconds < 0 else seconds


class _GenerationBody(_ModelBody):
    stream: bool | None = None
    format: str | dict[str, Any] | None = None
    think: bool | str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @property
    def streaming(self) -> bool:
        return self.stream is not False  # Ollama streams unless told not to


class ChatRequest(_GenerationBody):
    messages: list[Message] | None = None
    tools: list[ToolDef] | None = None


class GenerateRequest(_GenerationBody):
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool | None = None
    images: list[str] | None = None


class EmbedRequest(_ModelBody):
    input: str | list[str] | None = None
    truncate: bool | None = None
    dimensions: int | None = Field(None, ge=1)


class EmbeddingsRequest(_ModelBody):
    prompt: str | None = None


class ShowRequest(_Body):
    model: str = ""
    name: str = ""  # the older spelling, still sent by some clients
    verbose: bool | None = None


class CopyRequest(_Body):
    source: str = ""
    destination: str = ""


class DeleteRequest(_Body):
    model: str = ""
    name: str = ""  # the older spelling


class CreateRequest(_Body):
    model: str = ""
    name: str = ""  # the older spelling
    from_: str | None = Field(None, alias="from")
    system: str | None = None
    template: str | None = None
    parameters: Options | None = None
    stream: bool | None = None
    # Ollama builds models from files, adapters and quantizations; Hearth derives them
    # from served ones only, so these are refused when present.
    files: dict[str, Any] | None = None
    adapters: dict[str, Any] | None = None
    quantize: str | None = None
    messages: list[dict[str, Any]] | None = None
    modelfile: str | None = None


class PullRequest(_Body):
    model: str = ""
    name: str = ""  # the older spelling
    insecure: bool | None = None
    stream: bool | None = None
