"""The OpenAI Assistants API v2 under /v1 (clients send `OpenAI-Beta: assistants=v2`)."""

from fastapi import APIRouter, Depends

from hearth.api.assistants import assistants, runs, threads
from hearth.api.auth import require_key


def assistants_router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
    for module in (assistants, runs, threads):
        router.include_router(module.router)
    return router
