"""The Anthropic Messages API surface under /v1 (the anthropic SDKs, Claude Code)."""

from fastapi import APIRouter

from hearth.api.anthropic import batches, messages
from hearth.api.documented import ANTHROPIC_ERRORS


def anthropic_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ANTHROPIC_ERRORS)
    router.include_router(messages.router)
    router.include_router(batches.router)
    return router
