"""GET /health's readiness: unready while a model loads for the first time or failed to;
a model loading again (swapped back in, or after its keep-alive) keeps the server ready."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pytest

from hearth.api.health import health
from hearth.core.errors import EngineError
from hearth.engine.base import Backend
from hearth.engine.fake import FakeBackend
from hearth.engine.registry import ModelRegistry


class Gated:
    """A factory whose loads wait for `open`; `fail` makes the next one raise."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.fail = False

    async def factory(self) -> Backend:
        await self.open.wait()
        if self.fail:
            raise RuntimeError("no such file")
        return FakeBackend("m")


async def _health(registry: ModelRegistry) -> tuple[int, list[str]]:
    response = await health(SimpleNamespace(registry=registry, started_at=time.time()))  # type: ignore[arg-type]
    body = json.loads(response.body)
    return response.status_code, [m["state"] for m in body["models"]]


async def test_ready_through_a_reload_but_not_a_first_load_or_a_failure() -> None:
    gate = Gated()
    registry = ModelRegistry()
    registry.register("m", gate.factory)
    assert await _health(registry) == (200, ["unloaded"])
    first = asyncio.create_task(registry.get("m"))
    await asyncio.sleep(0.01)
    assert await _health(registry) == (503, ["loading"])
    gate.open.set()
    await first
    assert await _health(registry) == (200, ["loaded"])
    await registry.unload("m")
    gate.open.clear()
    again = asyncio.create_task(registry.get("m"))
    await asyncio.sleep(0.01)
    assert await _health(registry) == (200, ["loading"])
    gate.open.set()
    await again
    await registry.unload("m")
    gate.fail = True
    with pytest.raises(EngineError):
        await registry.get("m")
    assert await _health(registry) == (503, ["failed"])
    await registry.close()
