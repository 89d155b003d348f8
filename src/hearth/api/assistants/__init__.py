"""The OpenAI Assistants API v2 under /v1 (clients send `OpenAI-Beta: assistants=v2`)."""

from fastapi import APIRouter

from hearth.api.assistants import assistants, runs, threads
from hearth.api.documented import OPENAI_ERRORS


def assistants_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=OPENAI_ERRORS)
    for module in (assistants, runs, threads):
        router.include_router(module.router)
    return router
