"""The Ollama API surface under /api, and its liveness line at /."""

from fastapi import APIRouter

from hearth.api.documented import OLLAMA_ERRORS
from hearth.api.ollama import chat, embed, generate, manage, models, root


def ollama_router() -> APIRouter:
    api = APIRouter(prefix="/api", responses=OLLAMA_ERRORS)
    subs = (chat.router, generate.router, embed.router, models.router, manage.router)
    for sub in (*subs, root.api_router):
        api.include_router(sub)
    router = APIRouter()
    router.include_router(api)
    router.include_router(root.router)
    return router
