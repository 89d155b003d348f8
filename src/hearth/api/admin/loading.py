"""/admin/models: which models are loaded, and loading or unloading one by hand.

    GET  /admin/models                 every served model and its state now
    POST /admin/models/{name}/load     load it (waits its turn under --max-loaded-models)
    POST /admin/models/{name}/unload   unload it: at once if idle (200), else when the
                                       requests running on it end (202); never under them

An unload does not refuse a model in use (as a 409 would): like Ollama's keep_alive 0, the
model goes as soon as its running requests are done, and the answer says it is pending.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from hearth.api.state import State
from hearth.api.streaming import unless_disconnected
from hearth.engine.registry import ModelRegistry, ModelStatus

router = APIRouter(prefix="/models")


class ModelState(BaseModel):
    """A served model as it stands; times are unix seconds."""

    object: Literal["model_state"] = "model_state"
    id: str
    state: Literal["unloaded", "loading", "loaded", "failed", "unloading"] = Field(
        description="'unloading': in use, unloaded when its running requests end"
    )
    in_use: int = Field(description="requests running on it now")
    loaded_at: int | None
    expires_at: int | None = Field(
        description="when it unloads if no request comes (null: loaded for good, or not loaded)"
    )

    @classmethod
    def of(cls, s: ModelStatus, *, unloading: bool = False) -> ModelState:
        return cls(
            id=s.name,
            state="unloading" if unloading else s.state,  # type: ignore[arg-type]
            in_use=s.in_use,
            loaded_at=int(s.loaded_at) if s.loaded_at is not None else None,
            expires_at=int(s.expires_at) if s.expires_at is not None else None,
        )


class ModelStates(BaseModel):
    object: Literal["list"] = "list"
    max_loaded: int = Field(description="--max-loaded-models (0: no limit)")
    data: list[ModelState]


def _status(registry: ModelRegistry, name: str) -> ModelStatus:
    base = registry.resolve(name)
    return next(s for s in registry.status() if s.name == base)


@router.get("", response_model=ModelStates, summary="Served models and their state")
async def list_models(state: State) -> ModelStates:
    registry = state.registry
    data = [ModelState.of(s) for s in registry.status()]
    return ModelStates(max_loaded=registry.max_loaded, data=data)


# `:path`: a pulled model's name holds slashes (hf.co/user/repo:q4_k_m).
@router.post("/{name:path}/load", response_model=ModelState, summary="Load a model")
async def load_model(name: str, state: State, request: Request) -> ModelState:
    await unless_disconnected(request, state.registry.get(name))
    return ModelState.of(_status(state.registry, name))


@router.post(
    "/{name:path}/unload",
    response_model=ModelState,
    summary="Unload a model",
    responses={202: {"model": ModelState, "description": "In use: unloads when its requests end"}},
)
async def unload_model(name: str, state: State, response: Response) -> ModelState:
    done = await state.registry.unload(name)
    if not done:
        response.status_code = status.HTTP_202_ACCEPTED
    return ModelState.of(_status(state.registry, name), unloading=not done)
