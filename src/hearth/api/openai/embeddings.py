"""POST /v1/embeddings."""

from __future__ import annotations

import base64

import numpy as np
from fastapi import APIRouter, Request, Response

from hearth.api.openai.prompts import Prompt, check_vocabulary, parse_prompts
from hearth.api.openai.replies import CreateEmbeddingResponse, json_reply
from hearth.api.openai.schemas import EmbeddingRequest
from hearth.api.state import State
from hearth.api.streaming import unless_disconnected
from hearth.core.errors import InvalidRequest
from hearth.engine.types import ModelInfo
from hearth.services.embeddings import Embeddings, embed

router = APIRouter()


MAX_INPUTS = 2048  # OpenAI's limit


@router.post("/embeddings", response_model=CreateEmbeddingResponse)
async def create_embeddings(body: EmbeddingRequest, state: State, request: Request) -> Response:
    prompts = _inputs(body)

    def check(info: ModelInfo) -> None:
        check_vocabulary(prompts, info.vocab_size)
        width = info.embedding_length
        if body.dimensions is not None and body.dimensions != width:
            raise InvalidRequest(
                f"This model produces {width}-dimensional embeddings; 'dimensions' must be "
                f"{width} or left out.",
                param="dimensions",
            )

    work = embed(state.registry, body.model, [p.value for p in prompts], check=check)
    return json_reply(embedding_list(body, await unless_disconnected(request, work)))


def _inputs(body: EmbeddingRequest) -> list[Prompt]:
    prompts = parse_prompts(body.input, "input")
    if len(prompts) > MAX_INPUTS:
        raise InvalidRequest(
            f"Invalid value for 'input': at most {MAX_INPUTS} inputs per request.", param="input"
        )
    for i, prompt in enumerate(prompts):
        if prompt.text == "":
            raise InvalidRequest(f"Input {i} is an empty string.", param=prompt.param)
    return prompts


def embedding_list(body: EmbeddingRequest, result: Embeddings) -> CreateEmbeddingResponse:
    """The vectors in the encoding the client asked for, in input order."""

    def encoded(vector: list[float]) -> list[float] | str:
        if body.encoding_format == "base64":
            raw = np.asarray(vector, dtype="<f4").tobytes()
            return base64.b64encode(raw).decode("ascii")
        return vector

    return CreateEmbeddingResponse.model_validate(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": encoded(vector)}
                for i, vector in enumerate(result.vectors)
            ],
            "model": body.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        }
    )
