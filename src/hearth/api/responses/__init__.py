"""The OpenAI Responses and Conversations APIs under /v1, on stored state."""

from fastapi import APIRouter, Depends

from hearth.api.auth import require_key
from hearth.api.responses import conversations, routes


def responses_router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
    for module in (routes, conversations):
        router.include_router(module.router)
    return router
