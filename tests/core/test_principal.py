"""Who a request acts for: the surface a path belongs to, which models a key sees, and the
contextvar that tasks a request starts inherit."""

from __future__ import annotations

import asyncio

import pytest

from hearth.core import principal
from hearth.core.principal import OPEN, Limits, Principal


@pytest.mark.parametrize(
    ("path", "surface"),
    [
        ("/v1/chat/completions", "openai"),
        ("/v1/embeddings", "openai"),
        ("/v1/models", "openai"),
        ("/v1/responses/resp_1/cancel", "responses"),
        ("/v1/threads/runs", "assistants"),
        ("/v1/assistants", "assistants"),
        ("/v1/messages", "anthropic"),
        ("/v1/ws", "ws"),
        ("/api/chat", "ollama"),
        ("/health", "other"),
        ("/admin/keys", "other"),
    ],
)
def test_surface_of(path: str, surface: str) -> None:
    assert principal.surface_of(path) == surface


def test_sees() -> None:
    limited = Principal(name="k", models=frozenset({"small"}))
    assert limited.sees("small") and limited.sees("alias", "small")
    assert not limited.sees("big")
    assert Principal(name="all").sees("anything")


def test_limits_any() -> None:
    assert not Limits().any
    assert Limits(rpm=1).any and Limits(budget_tokens=10, budget_period="day").any


async def test_a_started_task_acts_for_its_request() -> None:
    key = Principal(name="team")

    async def request() -> tuple[Principal, str]:
        principal.act_as(key, "ollama")

        async def background() -> tuple[Principal, str]:
            await asyncio.sleep(0)
            return principal.current(), principal.surface()

        return await asyncio.create_task(background())

    assert await asyncio.create_task(request()) == (key, "ollama")
    # The caller's own context is untouched: outside a request, the server acts as OPEN.
    assert principal.current() is OPEN and principal.surface() == "other"
