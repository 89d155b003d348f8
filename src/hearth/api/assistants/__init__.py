"""The OpenAI Assistants API v2 under /v1 (clients send `OpenAI-Beta: assistants=v2`)."""

from fastapi import APIRouter

from hearth.api.assistants import assistants, runs, threads


def assistants_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    for module in (assistants, runs, threads):
        router.include_router(module.router)
    return router
