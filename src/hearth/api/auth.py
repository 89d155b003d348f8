"""Bearer-key authentication for the API routers."""

from __future__ import annotations

from fastapi import Request

from hearth.api.state import get_state
from hearth.core.errors import Unauthorized


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def require_key(request: Request) -> None:
    """Router dependency: with keys configured, a valid `Authorization: Bearer` is required."""
    keyring = get_state(request).keyring
    if not keyring.enabled:
        return
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    if not keyring.verify(token):
        raise Unauthorized("Incorrect API key provided.")
