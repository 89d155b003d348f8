"""POST /v1/embeddings."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter

from hearth.api.openai.schemas import EmbeddingRequest
from hearth.api.state import State
from hearth.core.errors import InvalidRequest

router = APIRouter()


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, state: State) -> dict[str, Any]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("Token-id inputs are not supported; send text.", param="input")
    for i, text in enumerate(texts):
        if not text:  # type: ignore[union-attr]
            raise InvalidRequest(f"Input {i} is an empty string.", param="input")
    async with state.registry.lease(body.model) as backend:
        width = backend.info.embedding_length
        if body.dimensions is not None and body.dimensions != width:
            raise InvalidRequest(
                f"This model produces {width}-dimensional embeddings; 'dimensions' must be "
                f"{width} or left out.",
                param="dimensions",
            )
        result = await backend.embed(texts)  # type: ignore[arg-type]
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
