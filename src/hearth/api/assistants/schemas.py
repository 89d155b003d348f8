"""Request bodies of the Assistants API: the service's typed params (services/assistants/
params.py), whose types and ranges pydantic checks here; tools, messages, metadata and the
like the service checks, naming the exact param. What only the surface reads is added."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from hearth.services.assistants.params import AssistantParams, RunParams, ThreadRunParams


class CreateAssistant(AssistantParams):
    model: str


class CreateRun(RunParams):
    stream: bool | None = None


class CreateThreadAndRun(ThreadRunParams):
    stream: bool | None = None


class SubmitToolOutputs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tool_outputs: list[Any]
    stream: bool | None = None
