"""POST /v1/embeddings."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter

from hearth.api.openai.prompts import check_vocabulary, parse_prompts
from hearth.api.openai.schemas import EmbeddingRequest
from hearth.api.state import State
from hearth.core.errors import InvalidRequest

router = APIRouter()


MAX_INPUTS = 2048  # OpenAI's limit


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, state: State) -> dict[str, Any]:
    prompts = parse_prompts(body.input, "input")
    if len(prompts) > MAX_INPUTS:
        raise InvalidRequest(
            f"Invalid value for 'input': at most {MAX_INPUTS} inputs per request.", param="input"
        )
    for i, prompt in enumerate(prompts):
        if prompt.text == "":
            raise InvalidRequest(f"Input {i} is an empty string.", param=prompt.param)
    async with state.registry.lease(body.model) as backend:
        check_vocabulary(prompts, backend.info.vocab_size)
        width = backend.info.embedding_length
        if body.dimensions is not None and body.dimensions != width:
            raise InvalidRequest(
                f"This model produces {width}-dimensional embeddings; 'dimensions' must be "
                f"{width} or left out.",
                param="dimensions",
            )
        result = await backend.embed([p.value for p in prompts])
    data = []
    for i, vector in enumerate(result.vectors):
        encoded: Any = vector
        if body.encoding_format == "base64":
            raw = np.asarray(vector, dtype="<f4").tobytes()
            encoded = base64.b64encode(raw).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
