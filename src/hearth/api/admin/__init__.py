"""The admin API under /admin: keys, usage, pulling models and loading or unloading
them, for admin keys only (static `--api-key` keys are admin keys; with authentication
off the server is open to everyone anyway). Each module adds its routes to `router` with
`dependencies=[AdminOnly]` on the router."""

from fastapi import APIRouter, Depends

from hearth.api.admin import keys, loading, models, usage
from hearth.api.documented import OPENAI_ERRORS
from hearth.core import principal
from hearth.core.errors import Forbidden


def admin_only() -> None:
    if not principal.current().admin:
        raise Forbidden("This API key may not use the admin API; an admin key is needed.")


AdminOnly = Depends(admin_only)


def admin_router() -> APIRouter:
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[AdminOnly], responses=OPENAI_ERRORS
    )
    router.include_router(keys.router)
    router.include_router(usage.router)
    router.include_router(models.router)
    router.include_router(loading.router)
    return router
