"""Who a request acts for, and through which surface: set by the auth gate (api/auth.py)
for the request's task. Contextvars, so what the request starts (a background response,
an assistant run, a generation's meter) acts for the same key without every layer
handing it along; code outside any request (start-up, recovered jobs) acts as OPEN."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Literal

Surface = Literal["openai", "responses", "assistants", "ollama", "ws", "anthropic", "other"]
BudgetPeriod = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Limits:
    """A key's limits; None is unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    budget_tokens: int | None = None
    budget_period: BudgetPeriod | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.max_concurrent)) or (
            self.budget_tokens is not None
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """A key's identity as requests see it. `name` is what logs and metrics show (never
    the key); `key_id` is set for database keys only."""

    name: str
    key_id: str | None = None
    admin: bool = False
    models: frozenset[str] | None = None  # None: every model
    limits: Limits = field(default_factory=Limits)

    def sees(self, *names: str) -> bool:
        """Whether a model known by any of these names (a name and what it stands for)
        exists for this key."""
        return self.models is None or any(n in self.models for n in names)

    def owns(self, tenant: str | None) -> bool:
        """Whether a stored object created by the database key `tenant` (None: by an
        admin's static key or on an open server) is this key's: admins reach every
        object, other keys only their own."""
        return self.admin or (self.key_id is not None and tenant == self.key_id)


OPEN = Principal(name="open", admin=True)  # authentication is off: anyone may do anything
STATIC = Principal(name="static", admin=True)  # an --api-key key: the operator's own
ANONYMOUS = Principal(name="anonymous")  # a keyless request to an open path (/health)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "hearth_principal", default=OPEN
)
_surface: contextvars.ContextVar[Surface] = contextvars.ContextVar(
    "hearth_surface", default="other"
)


def current() -> Principal:
    return _principal.get()


def surface() -> Surface:
    return _surface.get()


def act_as(principal: Principal, via: Surface | None = None) -> None:
    """Set for the rest of the calling task (and tasks it starts from now on)."""
    _principal.set(principal)
    if via is not None:
        _surface.set(via)


def surface_of(path: str) -> Surface:
    """The surface a (normalised) path belongs to."""
    if path.startswith("/api/"):
        return "ollama"
    if path == "/v1/ws":
        return "ws"
    if path.startswith("/v1/responses"):
        return "responses"
    if path.startswith(("/v1/threads", "/v1/assistants")):
        return "assistants"
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "other"
