"""GET /v1/models and /v1/models/{id}: OpenAI's shape, or Anthropic's for a request that
carries `anthropic-version`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from hearth.api.anthropic.models import model_info, model_page
from hearth.api.state import AppState, State
from hearth.core.errors import ModelNotFound

router = APIRouter()

AnthropicVersion = Annotated[str | None, Header(alias="anthropic-version")]


def _created(state: AppState, name: str) -> int:
    backend = state.registry.loaded(name)
    return backend.info.created if backend is not None else int(state.started_at)


def _model(state: AppState, name: str, states: dict[str, str]) -> dict[str, Any]:
    """OpenAI's model object, and what else a client may want to show (clients ignore
    fields they do not know): its file's size, quantisation, trained context, and
    whether it is loaded."""
    created = _created(state, name)
    target = state.registry.resolve(name)
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "hearth",
        **state.models_folder.describe(target),
        "state": states.get(target, "unloaded"),
    }


def _states(state: AppState) -> dict[str, str]:
    return {s.name: s.state for s in state.registry.status()}


@router.get("/models")
async def list_models(
    state: State,
    anthropic_version: AnthropicVersion = None,
    before_id: str | None = None,
    after_id: str | None = None,
    limit: Annotated[int, Query()] = 20,
) -> dict[str, Any]:
    state.models_folder.scan()  # a file put there a moment ago is listed
    names = state.registry.names()
    if anthropic_version is not None:
        models = [model_info(n, _created(state, n)) for n in names]
        return model_page(models, before_id, after_id, limit)
    states = _states(state)
    return {"object": "list", "data": [_model(state, n, states) for n in names]}


@router.get("/models/{model_id:path}")
async def get_model(
    model_id: str, state: State, anthropic_version: AnthropicVersion = None
) -> dict[str, Any]:
    if model_id not in state.registry:
        raise ModelNotFound(f"The model '{model_id}' does not exist", param="model")
    if anthropic_version is not None:
        return model_info(model_id, _created(state, model_id))
    return _model(state, model_id, _states(state))
