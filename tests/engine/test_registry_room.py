"""max_loaded: the least recently used idle model makes room; a model in use never does;
loads that find no room wait their turn, bounded by the queue timeout."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from hearth.core.errors import EngineError, ModelNotFound, QueueTimeout
from hearth.engine.base import Backend
from hearth.engine.fake import FakeBackend
from hearth.engine.registry import ModelRegistry, Release


class Models:
    """Factories that record what was loaded and closed, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def factory(self, name: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
        async def load() -> Backend:
            self.events.append(f"load {name}")
            await asyncio.sleep(0.02)
            if fail:
                raise RuntimeError("no such file")
            backend = FakeBackend(name)
            original = backend.close

            async def close() -> None:
                self.events.append(f"close {name}")
                await original()

            backend.close = close  # type: ignore[method-assign]
            return backend

        return load

    def loads(self) -> list[str]:
        return [e.split()[1] for e in self.events if e.startswith("load")]


def _registry(models: Models, *names: str, max_loaded: int, timeout: float = 5.0) -> ModelRegistry:
    registry = ModelRegistry(max_loaded=max_loaded, queue_timeout=timeout)
    for name in names:
        registry.register(name, models.factory(name))
    return registry


def _loaded(registry: ModelRegistry) -> set[str]:
    return {s.name for s in registry.status() if s.state == "loaded"}


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def _busy(*others: str, patience: float = 5.0) -> tuple[Models, ModelRegistry, Release]:
    """One place, taken by model `a` with a request running on it."""
    models = Models()
    registry = _registry(models, "a", *others, max_loaded=1, timeout=patience)
    _, release = await registry.acquire("a")
    return models, registry, release


async def _waiting(registry: ModelRegistry, name: str) -> asyncio.Task[Backend]:
    task = asyncio.create_task(registry.get(name))
    await _settle()
    return task


async def test_the_least_recently_used_idle_model_makes_room(
    caplog: pytest.LogCaptureFixture,
) -> None:
    models = Models()
    registry = _registry(models, "a", "b", "c", max_loaded=2)
    await registry.get("a")
    await registry.get("b")
    async with registry.lease("a"):
        pass  # a is used after b: b is now the least recently used
    with caplog.at_level(logging.INFO, logger="hearth.engine.registry"):
        await registry.get("c")
    # The log tells the swap as it happens, with the seconds each step took.
    assert re.search(r"unloaded model b to make room for c in \d+\.\ds", caplog.text)
    assert "loading model c" in caplog.text
    assert re.search(r"loaded model c in \d+\.\ds", caplog.text)
    assert _loaded(registry) == {"a", "c"}
    # The old model is closed before the new one loads: never three in memory.
    assert models.events[-2:] == ["close b", "load c"]
    await registry.get("b")
    assert _loaded(registry) == {"c", "b"}
    await registry.close()


async def test_a_model_in_use_is_never_unloaded_and_the_load_waits_for_it() -> None:
    models, registry, release = await _busy("b")
    waiting = await _waiting(registry, "b")
    assert not waiting.done()
    assert _loaded(registry) == {"a"} and "close a" not in models.events
    await release()
    backend = await asyncio.wait_for(waiting, 2)
    assert backend.info.name == "b"
    assert _loaded(registry) == {"b"} and models.events[-2:] == ["close a", "load b"]
    await registry.close()


async def test_waiting_loads_are_served_first_come_first_served() -> None:
    models, registry, release_a = await _busy("b", "c")
    got_b = asyncio.create_task(registry.acquire("b"))
    await _settle()
    got_c = asyncio.create_task(registry.acquire("c"))
    await _settle()
    await release_a()
    _, release_b = await asyncio.wait_for(got_b, 2)
    await _settle()
    assert not got_c.done()  # c waits while b is in use
    await release_b()
    _, release_c = await asyncio.wait_for(got_c, 2)
    await release_c()
    assert models.loads() == ["a", "b", "c"]
    await registry.close()


async def test_a_request_for_a_loaded_model_does_not_queue() -> None:
    _, registry, release = await _busy("b")
    waiting = await _waiting(registry, "b")
    async with registry.lease("a"):  # queued b does not hold up a's own requests
        pass
    await release()
    await asyncio.wait_for(waiting, 2)
    await registry.close()


async def test_a_load_that_waits_too_long_is_a_queue_timeout() -> None:
    models, registry, release = await _busy("b", patience=0.1)
    with pytest.raises(QueueTimeout) as caught:
        await registry.get("b")
    assert caught.value.status == 503 and caught.value.retry_after
    assert "'b'" in caught.value.message and "0.1s" in caught.value.message
    assert _loaded(registry) == {"a"} and models.loads() == ["a"]
    await release()
    await registry.get("b")  # nothing left queued holds it up
    assert _loaded(registry) == {"b"}
    await registry.close()


async def test_waiting_loads_of_one_model_load_it_once() -> None:
    models, registry, release = await _busy("b")
    waiting = [asyncio.create_task(registry.get("b")) for _ in range(5)]
    await _settle()
    await release()
    backends = await asyncio.wait_for(asyncio.gather(*waiting), 2)
    assert len({id(b) for b in backends}) == 1
    assert models.loads() == ["a", "b"]
    await registry.close()


async def test_a_removed_model_frees_its_place() -> None:
    models, registry, release = await _busy("b", "c")
    waiting_b = await _waiting(registry, "b")
    waiting_c = await _waiting(registry, "c")
    await registry.remove("b")  # the load waiting for it learns it is gone
    with pytest.raises(ModelNotFound):
        await asyncio.wait_for(waiting_b, 2)
    await registry.remove("a")  # still in use: its place is free when its request ends
    assert not waiting_c.done()
    await release()
    await asyncio.wait_for(waiting_c, 2)
    assert _loaded(registry) == {"c"} and "close a" in models.events
    await registry.close()


async def test_a_model_loaded_with_no_request_on_it_gives_way() -> None:
    models = Models()
    registry = _registry(models, "a", "b", max_loaded=1)
    loading_a = asyncio.create_task(registry.get("a"))  # get() holds no lease
    await asyncio.sleep(0)
    waiting_b = asyncio.create_task(registry.get("b"))  # a's place is taken while it loads
    await asyncio.wait_for(asyncio.gather(loading_a, waiting_b), 2)
    assert models.events == ["load a", "close a", "load b"]
    await registry.close()


async def test_a_failed_load_frees_its_place() -> None:
    models = Models()
    registry = ModelRegistry(max_loaded=1)
    registry.register("broken", models.factory("broken", fail=True))
    registry.register("b", models.factory("b"))
    with pytest.raises(EngineError):
        await registry.get("broken")
    await registry.get("b")
    assert _loaded(registry) == {"b"}
    await registry.close()


async def test_models_not_bounded_take_no_place() -> None:
    models = Models()
    registry = ModelRegistry(max_loaded=1)
    registry.register("a", models.factory("a"))
    registry.register("pool", models.factory("pool"), bounded=False)
    _, release = await registry.acquire("a")
    await asyncio.wait_for(registry.get("pool"), 2)
    assert _loaded(registry) == {"a", "pool"}
    await release()
    await registry.close()


async def test_no_limit_keeps_every_model_loaded() -> None:
    models = Models()
    registry = _registry(models, "a", "b", "c", max_loaded=0)
    for name in ("a", "b", "c"):
        await registry.get(name)
    assert _loaded(registry) == {"a", "b", "c"}
    await registry.close()


async def test_unloading_a_model_in_use_waits_for_its_requests() -> None:
    models = Models()
    registry = _registry(models, "a", max_loaded=1)
    _, release = await registry.acquire("a")
    assert await registry.unload("a") is False
    assert _loaded(registry) == {"a"}
    await release()
    assert _loaded(registry) == set() and models.events[-1] == "close a"
    assert await registry.unload("a") is True  # not loaded: nothing to wait for
    await registry.close()


async def test_closing_fails_the_loads_still_waiting() -> None:
    _, registry, release = await _busy("b")
    waiting = await _waiting(registry, "b")
    await registry.close()
    with pytest.raises(Exception, match="stopping"):
        await asyncio.wait_for(waiting, 2)
    await release()


async def test_preloading_stops_at_max_loaded() -> None:
    models = Models()
    registry = _registry(models, "a", "b", "c", max_loaded=2)
    registry.register("pool", models.factory("pool"), bounded=False)
    await registry.preload()
    assert models.loads() == ["a", "b", "pool"] and "close a" not in models.events
    await registry.close()
