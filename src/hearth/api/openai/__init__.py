"""The OpenAI API surface under /v1."""

from fastapi import APIRouter

from hearth.api.documented import OPENAI_ERRORS
from hearth.api.openai import chat, completions, embeddings, models


def openai_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=OPENAI_ERRORS)
    for module in (models, chat, completions, embeddings):
        router.include_router(module.router)
    return router
