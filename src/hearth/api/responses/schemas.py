"""Request bodies of the Responses API. Items, metadata and text.format are checked by
the service, which names the exact param that is wrong."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hearth.services.responses import ResponseParams


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="ignore")

    effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class CreateResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[Any]
    instructions: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = Field(None, ge=1)
    text: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = True
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    stream: bool | None = False
    background: bool | None = False
    truncation: Literal["auto", "disabled"] | None = "disabled"
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = True
    user: str | None = None
    include: list[str] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    reasoning: Reasoning | None = None

    @field_validator("conversation")
    @classmethod
    def _conversation_id(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if not isinstance(value.get("id"), str):
                raise ValueError("a conversation object needs a string 'id'")
            return value["id"]
        return value

    def params(self) -> ResponseParams:
        return ResponseParams(
            model=self.model,
            input=self.input,
            instructions=self.instructions,
            temperature=self.temperature,
            top_p=self.top_p,
            max_output_tokens=self.max_output_tokens,
            text=self.text,
            metadata=self.metadata,
            store=self.store is not False,
            previous_response_id=self.previous_response_id or None,
            conversation=self.conversation or None,  # type: ignore[arg-type]
            stream=bool(self.stream),
            background=bool(self.background),
            truncation=self.truncation or "disabled",
            tools=self.tools or [],
            tool_choice=self.tool_choice if self.tool_choice is not None else "auto",
            parallel_tool_calls=self.parallel_tool_calls is not False,
            user=self.user,
            include=self.include or [],
            top_logprobs=self.top_logprobs,
            reasoning_effort=self.reasoning.effort if self.reasoning else None,
        )
