"""GET /v1/models and /v1/models/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hearth.api.state import AppState, State
from hearth.core.errors import ModelNotFound

router = APIRouter()


def _model(state: AppState, name: str) -> dict[str, Any]:
    backend = state.registry.loaded(name)
    created = backend.info.created if backend is not None else int(state.started_at)
    return {"id": name, "object": "model", "created": created, "owned_by": "hearth"}


@router.get("/models")
async def list_models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [_model(state, n) for n in state.registry.names()]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, state: State) -> dict[str, Any]:
    if model_id not in state.registry:
        raise ModelNotFound(f"The model '{model_id}' does not exist", param="model")
    return _model(state, model_id)
