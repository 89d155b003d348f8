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
from hearth.engine.types import ModelInfo
from hearth.services.embeddings import embed as embed_inputs

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

    def check(info: ModelInfo) -> None:
        if body.dimensions is not None and body.dimensions > info.embedding_length:
            raise InvalidRequest(
                f"dimensions must be at most {info.embedding_length}, the width of this "
                "model's embeddings",
                param="dimensions",
            )

    # truncate defaults to true: cut long inputs to the model's limit, not fail.
    work = embed_inputs(
        state.registry,
        name,
        texts,
        truncate=body.truncate is not False,
        keep_alive=body.keep_alive_for,
        check=check,
    )
    result = await unless_disconnected(request, work)
    vectors = result.vectors
    if body.dimensions is not None and body.dimensions < result.width:
        vectors = _shorten(vectors, body.dimensions)
    return {
        "model": body.model,
        "embeddings": vectors,
        "total_duration": time.perf_counter_ns() - start,
        "load_duration": result.load_ns,
        "prompt_eval_count": result.prompt_tokens,
    }


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, state: State, request: Request) -> dict[str, Any]:
    name = resolve_model(state, body.model)
    # No prompt loads the model, as in Ollama.
    texts = [body.prompt] if body.prompt else []
    work = embed_inputs(state.registry, name, texts, truncate=True, keep_alive=body.keep_alive_for)
    result = await unless_disconnected(request, work)
    return {"embedding": result.vectors[0] if result.vectors else []}
