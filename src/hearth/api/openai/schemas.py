"""Request bodies of the OpenAI surface, validated to the API's own ranges.

Unknown fields are ignored (clients send many we do not need); fields whose meaning we
cannot honour yet are refused with a 400 naming them rather than silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hearth.api.fields import one_of

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_only(self) -> ContentPart:
        if self.type != "text":
            raise ValueError(
                f"content parts of type '{self.type}' are not supported by this model; "
                "only 'text' parts are"
            )
        if self.text is None:
            raise ValueError("a 'text' content part needs a 'text' field")
        return self


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCallIn(BaseModel):
    """A call in an assistant message the client sends back."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Annotated[str, one_of(ROLES)]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    # An assistant turn's reasoning sent back (vLLM's and llama.cpp's names).
    reasoning_content: str | None = None
    reasoning: str | None = None

    def text(self) -> str | None:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content)
        return self.content


class FunctionDef(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(BaseModel):
    type: Literal["function"]
    function: FunctionDef


class FunctionName(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: FunctionName


class StreamOptions(BaseModel):
    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]


def _check_stop(value: str | list[str] | None) -> str | list[str] | None:
    if isinstance(value, list) and len(value) > 4:
        raise ValueError("at most 4 stop sequences are allowed")
    return value


class SamplingFields(_Body):
    """Fields shared by chat and text completions."""

    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=16)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    user: str | None = None
    # Extensions that llama.cpp's and vLLM's servers accept too.
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)

    _stop = field_validator("stop")(_check_stop)

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (value or {}).items():
            if not token.lstrip("-").isdigit():
                raise ValueError(f"keys must be token ids, got '{token}'")
            if not -100 <= bias <= 100:
                raise ValueError("biases must be between -100 and 100")
        return value

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(s for s in stops if s)


class ChatCompletionRequest(SamplingFields):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # Reasoning models: none/minimal turn thinking off; the rest turn it on at a level.
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    # Extensions of llama.cpp's and vLLM's servers: a reasoning budget, and variables for
    # the chat template (enable_thinking, …).
    max_reasoning_tokens: int | None = Field(None, ge=0)
    chat_template_kwargs: dict[str, Any] | None = None


class CompletionRequest(SamplingFields):
    # A string, strings, token ids or token-id arrays: see prompts.parse_prompts.
    prompt: str | list[Any]
    echo: bool | None = False
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=1)


class EmbeddingRequest(_Body):
    model: str = Field(min_length=1)
    # As a completion's prompt: see prompts.parse_prompts.
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
