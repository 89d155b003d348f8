"""The OpenAI Responses and Conversations APIs under /v1, on stored state."""

from fastapi import APIRouter

from hearth.api.documented import OPENAI_ERRORS
from hearth.api.responses import conversations, routes


def responses_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=OPENAI_ERRORS)
    for module in (routes, conversations):
        router.include_router(module.router)
    return router
