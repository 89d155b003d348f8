"""/admin/models/pull: a GGUF model from Hugging Face into the models folder, for clients
that do not speak Ollama's API. The reply streams the pull's progress as NDJSON lines
(`status`, and while downloading `digest`, `total`, `completed`); an error after the first
line is a last line `{"error": {...}}` in the OpenAI shape.

    POST /admin/models/pull  {"model": "bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M",
                              "name": "qwen-small", "stream": true}
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hearth.api import pulling
from hearth.api.documented import NDJSON_STREAM
from hearth.api.errors import openai_error_body
from hearth.api.state import State

router = APIRouter(prefix="/models")


class PullModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1,
        max_length=256,
        description="[hf.co/]USER/REPO[:QUANT]; QUANT: Q4_K_M, else the nearest the repo has",
    )
    name: str | None = Field(None, max_length=128, description="default: repo:quant, lower-cased")
    stream: bool = Field(True, description="false: one reply once the model is in place")


@router.post("/pull", response_model=None, responses=NDJSON_STREAM)
async def pull(body: PullModel, state: State) -> Response:
    steps = pulling.start(state, body.model, body.name)
    return await pulling.reply(steps, body.stream, openai_error_body)
