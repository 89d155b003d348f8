"""The OpenAI API surface under /v1."""

from fastapi import APIRouter

from hearth.api.openai import chat, completions, embeddings, models


def openai_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    for module in (models, chat, completions, embeddings):
        router.include_router(module.router)
    return router
