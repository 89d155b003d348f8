"""Reply bodies of the OpenAI surface, as the OpenAI Python SDK's types shape them.

They are the routes' `response_model`s, so /openapi.json documents what each returns.
Only what Hearth sends is declared, with the SDK's names and types. A field is sent when it
was given, also as null, and left out when not (`exclude_unset`): `tool_calls` appears on
a message only with calls, while `refusal` is always there, null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from starlette.responses import Response


def json_reply(body: BaseModel) -> Response:
    """The body with the fields that were given: encoded once, in pydantic's core."""
    return Response(body.model_dump_json(exclude_unset=True), media_type="application/json")


# ---- shared by chat and text completions ---------------------------------------------


class PromptTokensDetails(BaseModel):
    cached_tokens: int


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


# ---- POST /v1/chat/completions -------------------------------------------------------


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatCompletionTokenLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[ChatCompletionTokenLogprob] | None
    refusal: list[ChatCompletionTokenLogprob] | None


class Function(BaseModel):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ChatCompletionMessageToolCall(BaseModel):
    id: str
    type: Literal["function"]
    function: Function


class URLCitation(BaseModel):
    start_index: int
    end_index: int
    title: str
    url: str


class Annotation(BaseModel):
    type: Literal["url_citation"]
    url_citation: URLCitation


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    annotations: list[Annotation]
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    # A reasoning model's thinking: vLLM's and llama.cpp's name, and vLLM's newer one.
    reasoning_content: str | None = None
    reasoning: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    logprobs: ChoiceLogprobs | None
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[ChatChoice]
    usage: CompletionUsage


# ---- POST /v1/completions ------------------------------------------------------------


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: Literal["stop", "length", "content_filter"]


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[CompletionChoice]
    usage: CompletionUsage


# ---- POST /v1/embeddings -------------------------------------------------------------


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    # floats, or with `encoding_format: "base64"` their little-endian float32 bytes
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
