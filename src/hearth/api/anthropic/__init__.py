"""The Anthropic Messages API surface under /v1 (the anthropic SDKs, Claude Code)."""

from fastapi import APIRouter

from hearth.api.anthropic import messages


def anthropic_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    router.include_router(messages.router)
    return router
