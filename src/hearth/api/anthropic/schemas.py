"""Request bodies of the Anthropic Messages surface, with the API's own ranges.

Unknown fields are ignored (Claude Code and newer SDKs send fields this server has no use
for, such as `service_tier` or `context_management`); `cache_control` is accepted on
every block and tool, since Hearth's prefix cache reuses what it can without being told.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BATCH = 10_000  # requests in one Message Batch, as Anthropic allows


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlock(_Part):
    type: Literal["text"]
    text: str


class ToolUseBlock(_Part):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Part):
    type: Literal["tool_result"]
    tool_use_id: str
    # A string, or blocks: text only, since the bundled models have no vision.
    content: str | list[Block] = ""
    is_error: bool = False


class ThinkingBlock(_Part):
    """Reasoning of an earlier turn: its text goes to the chat template, which shows it
    or not as the model was trained (Qwen3 keeps it in a tool-call loop); a redacted
    one (`data`, encrypted) has none to give."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: str | None = None


class MediaBlock(_Part):
    """An image or document: accepted by validation so the refusal can say why."""

    type: Literal["image", "document", "search_result", "container_upload"]


Block = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | MediaBlock,
    Field(discriminator="type"),
]


class MessageParam(_Part):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(_Part):
    # A custom tool; Anthropic's server tools (web_search_…, bash_…) carry a versioned
    # `type` and no schema, and nothing here runs them.
    type: Literal["custom"] | None = None
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    input_schema: dict[str, Any]


class ToolChoice(_Part):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False

    @model_validator(mode="after")
    def _named(self) -> ToolChoice:
        if self.type == "tool" and not self.name:
            raise ValueError("a tool_choice of type 'tool' needs a 'name'")
        return self


class Thinking(_Part):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Annotated[int, Field(ge=1024)] | None = None


class Metadata(_Part):
    user_id: Annotated[str, Field(max_length=256)] | None = None


class MessageCountRequest(_Part):
    """What decides the prompt: the body of /v1/messages/count_tokens."""

    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[MessageParam], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None


class MessageRequest(MessageCountRequest):
    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    metadata: Metadata | None = None
    # Not Anthropic's: Hearth's reproducible sampling, as on its other surfaces
    # (the SDK sends it with extra_body={"seed": n}).
    seed: int | None = None


ToolResultBlock.model_rebuild()


class BatchRequest(_Part):
    custom_id: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    params: MessageRequest


class BatchCreateRequest(_Part):
    """The body of POST /v1/messages/batches."""

    requests: Annotated[list[BatchRequest], Field(min_length=1, max_length=MAX_BATCH)]
