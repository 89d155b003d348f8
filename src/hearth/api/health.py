"""GET /health: for load balancers and operators. Open even when API keys are set (api/auth.py)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hearth import __version__
from hearth.api.state import State

router = APIRouter()


_UNREADY = "A model is loading for the first time, or failed to load"


@router.get("/health", responses={503: {"description": _UNREADY}})
async def health(state: State) -> JSONResponse:
    models = []
    ready = True
    for status in state.registry.status():
        # Not ready while a model loads for the first time or failed to; a model loading
        # again (swapped in under --max-loaded-models, or back after its keep-alive) is
        # no reason for a load balancer to take the whole server out.
        if status.state == "failed" or (status.state == "loading" and not status.loaded_before):
            ready = False
        entry: dict[str, object] = {
            "id": status.name,
            "state": status.state,
            "in_use": status.in_use,
        }
        if status.loaded_at is not None:
            entry["loaded_at"] = int(status.loaded_at)
            entry["expires_at"] = int(status.expires_at) if status.expires_at else None
        if status.error:
            entry["error"] = status.error
        if status.stats is not None:
            entry.update(status.stats)
        if status.members:
            entry["members"] = [
                {"url": m.url, "state": m.state, "in_flight": m.in_flight, "errors": m.errors}
                for m in status.members
            ]
        models.append(entry)
    body = {
        "status": "ok" if ready else "unavailable",
        "version": __version__,
        "uptime_s": round(time.time() - state.started_at, 1),
        "models": models,
    }
    return JSONResponse(body, status_code=200 if ready else 503)
