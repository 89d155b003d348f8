"""GET /api/tags, POST /api/show, GET /api/ps: the served models, Ollama's way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hearth.api.ollama.convert import DEFAULTS, iso, ollama_name, resolve_model
from hearth.api.ollama.details import details, digest, model_info
from hearth.api.ollama.schemas import ShowRequest
from hearth.api.state import AppState, State
from hearth.api.streaming import unless_disconnected
from hearth.engine.types import ModelInfo

router = APIRouter()

# Ollama's listing of a model kept loaded for good: an expiry that never comes.
_NEVER = "9999-12-31T23:59:59Z"


def _info(state: AppState, name: str) -> ModelInfo | None:
    backend = state.registry.loaded(name)
    return backend.info if backend is not None else None


# HEAD apart and out of the schema: one route with both methods gives /openapi.json two
# operations with one id.
@router.get("/tags")
@router.head("/tags", include_in_schema=False)
async def tags(state: State) -> dict[str, Any]:
    state.models_folder.scan()  # a file put there a moment ago is listed
    models = []
    for name in state.registry.names():
        info = _info(state, name)
        # Not loaded: what the file's header says (size and quantisation) instead.
        known = state.models_folder.describe(state.registry.resolve(name))
        about = details(info)
        about["quantization_level"] = about["quantization_level"] or known.get("quantization", "")
        models.append(
            {
                "name": name,
                "model": name,
                "modified_at": iso(info.created if info is not None else state.started_at),
                "size": info.size_bytes if info is not None else known.get("size", 0),
                "digest": digest(state.registry.resolve(name), info),
                "details": about,
            }
        )
    return {"models": models}


def _parameters(info: ModelInfo, overrides: dict[str, Any]) -> str:
    """The defaults this surface samples with (a derived model's own first), in the
    layout of Ollama's `parameters`."""
    d = DEFAULTS
    rows = {ollama_name(k): v for k, v in overrides.items()}
    for key, value in (
        ("num_ctx", info.context_length),
        ("temperature", d.temperature),
        ("top_k", d.top_k),
        ("top_p", d.top_p),
        ("repeat_penalty", d.repetition_penalty),
        ("repeat_last_n", d.repeat_last_n),
    ):
        rows.setdefault(key, value)
    return "\n".join(f"{key:<30} {value}" for key, value in rows.items())


@router.post("/show")
async def show(body: ShowRequest, state: State, request: Request) -> dict[str, Any]:
    name = resolve_model(state, body.model or body.name)
    backend = await unless_disconnected(request, state.registry.get(name))
    info = backend.info
    profile = state.registry.profile(name)
    base = state.registry.resolve(name)
    modelfile = [f"# Served by Hearth\nFROM {base}"]
    if profile.system:
        modelfile.append(f'SYSTEM """{profile.system}"""')
    modelfile += [f"PARAMETER {ollama_name(k)} {v}" for k, v in profile.options.items()]
    out = {
        "license": info.metadata.get("general.license", ""),
        "modelfile": "\n".join(modelfile) + "\n",
        "parameters": _parameters(info, profile.options),
        "template": profile.template or info.chat_template or "",
        "details": details(info),
        "model_info": model_info(info),
        # Every model here completes text and embeds it (mean-pooled).
        "capabilities": ["completion", "tools", "embedding"]
        + (["thinking"] if info.reasoning else []),
        "modified_at": iso(info.created),
    }
    if profile.system:
        out["system"] = profile.system
    return out


@router.get("/ps")
async def ps(state: State) -> dict[str, Any]:
    models = []
    for status in state.registry.status():
        info = _info(state, status.name) if status.state == "loaded" else None
        if info is None:
            continue
        models.append(
            {
                "name": status.name,
                "model": status.name,
                "size": info.size_bytes,
                "digest": digest(status.name, info),
                "details": details(info),
                "expires_at": iso(status.expires_at) if status.expires_at else _NEVER,
                "size_vram": 0,  # not measured: Hearth does not track GPU memory
                "context_length": info.context_length,
            }
        )
    return {"models": models}
