"""POST /api/embed and the older POST /api/embeddings."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from hearth.api.ollama.convert import resolve_model
from hearth.api.ollama.schemas import EmbeddingsRequest, EmbedRequest
from hearth.api.state import State
from hearth.api.streaming import unless_disconnected
from hearth.core.errors import InvalidRequest

router = APIRouter()


def _shorten(vectors: list[list[float]], dimensions: int) -> list[list[float]]:
    """Ollama's `dimensions`: the first n values, normalised again."""
    out = []
    for vector in vectors:
        head = np.asarray(vector[:dimensions], dtype=np.float64)
        norm = float(np.linalg.norm(head))
        out.append((head / norm if norm > 0 else head).tolist())
    return out


@router.post("/embed")
async def embed(body: EmbedRequest, state: State, request: Request) -> dict[str, Any]:
    start = time.perf_counter_ns()
    name = resolve_model(state, body.model)
    # Ollama: an empty string is no input (the call just loads the model).
    texts = [body.input] if isinstance(body.input, str) else list(body.input or [])
    texts = [] if texts == [""] else texts
    async with state.registry.lease(name, body.keep_alive_for) as backend:
        loaded = time.perf_counter_ns()
        width = backend.info.embedding_length
        if body.dimensions is not None and body.dimensions > width:
            raise InvalidRequest(
                f"dimensions must be at most {width}, the width of this model's embeddings",
                param="dimensions",
            )
        vectors: list[list[float]] = []
        tokens = 0
        if texts:
            # truncate defaults to true: cut long inputs to the model's limit, not fail.
            work = backend.embed(texts, truncate=body.truncate is not False)
            result = await unless_disconnected(request, work)
            vectors, tokens = result.vectors, result.prompt_tokens
    if body.dimensions is not None and body.dimensions < width:
        vectors = _shorten(vectors, body.dimensions)
    return {
        "model": body.model,
        "embeddings": vectors,
        "total_duration": time.perf_counter_ns() - start,
        "load_duration": loaded - start,
        "prompt_eval_count": tokens,
    }


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, state: State, request: Request) -> dict[str, Any]:
    name = resolve_model(state, body.model)
    async with state.registry.lease(name, body.keep_alive_for) as backend:
        if not body.prompt:  # loads the model, as in Ollama
            return {"embedding": []}
        result = await unless_disconnected(request, backend.embed([body.prompt], truncate=True))
    return {"embedding": result.vectors[0]}
