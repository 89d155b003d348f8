"""Request bodies of the Assistants API. Types and ranges are checked here; tools,
messages, metadata and the like by the service, which names the exact param."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def fields(self) -> dict[str, Any]:
        """What the client sent, as plain values."""
        return self.model_dump(exclude_unset=True)


class ModifyAssistant(_Body):
    model: str | None = None
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(None, max_length=256_000)
    tools: list[Any] | None = None
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    response_format: Any = None


class CreateAssistant(ModifyAssistant):
    model: str


class Modify(_Body):
    metadata: dict[str, Any] | None = None
    tool_resources: dict[str, Any] | None = None


class CreateThread(Modify):
    messages: list[Any] | None = None


class CreateMessage(_Body):
    role: str
    content: Any
    attachments: list[Any] | None = None
    metadata: dict[str, Any] | None = None


class CreateRun(_Body):
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    additional_messages: list[Any] | None = None
    tools: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    truncation_strategy: dict[str, Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None


class CreateThreadAndRun(CreateRun):
    thread: dict[str, Any] | None = None
    tool_resources: dict[str, Any] | None = None


class SubmitToolOutputs(_Body):
    tool_outputs: list[Any]
    stream: bool | None = None
