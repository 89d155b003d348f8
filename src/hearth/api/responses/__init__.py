"""The OpenAI Responses and Conversations APIs under /v1, on stored state."""

from fastapi import APIRouter

from hearth.api.responses import conversations, routes


def responses_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    for module in (routes, conversations):
        router.include_router(module.router)
    return router
