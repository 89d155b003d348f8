from __future__ import annotations

import asyncio

import pytest

from hearth.core import principal
from hearth.core.config import parse_keep_alive
from hearth.core.errors import Conflict, Forbidden, ModelNotFound
from hearth.core.principal import Principal
from hearth.engine.base import Backend
from hearth.engine.catalog import Catalog, Profile
from hearth.engine.fake import FakeBackend
from hearth.engine.registry import ModelRegistry


class Counting:
    def __init__(self) -> None:
        self.loads = 0
        self.closed = 0

    async def factory(self) -> Backend:
        self.loads += 1
        await asyncio.sleep(0.05)
        backend = FakeBackend("m")
        original = backend.close

        async def close() -> None:
            self.closed += 1
            await original()

        backend.close = close  # type: ignore[method-assign]
        return backend


async def test_ten_concurrent_first_requests_load_once() -> None:
    counter = Counting()
    registry = ModelRegistry()
    registry.register("m", counter.factory)
    backends = await asyncio.gather(*(registry.get("m") for _ in range(10)))
    assert counter.loads == 1
    assert len({id(b) for b in backends}) == 1


async def test_keep_alive_zero_unloads_once_idle_and_reloads_lazily() -> None:
    counter = Counting()
    registry = ModelRegistry(keep_alive=60)
    registry.register("m", counter.factory)
    async with registry.lease("m", keep_alive=0):
        await registry.reap()
        assert registry.loaded("m") is not None  # a lease keeps it
    await registry.reap()
    assert registry.loaded("m") is None and counter.closed == 1
    await registry.get("m")
    assert counter.loads == 2
    await registry.reap()  # the default keep-alive (60 s) has not passed
    assert registry.loaded("m") is not None
    await registry.close()


async def test_forever_and_status() -> None:
    counter = Counting()
    registry = ModelRegistry(keep_alive=0)
    registry.register("m", counter.factory)
    await registry.get("m", keep_alive=None)
    await registry.reap()
    [status] = registry.status()
    assert status.state == "loaded" and status.expires_at is None
    await registry.close()
    assert registry.status()[0].state == "unloaded"


async def test_aliases_resolve_and_remove() -> None:
    counter = Counting()
    registry = ModelRegistry()
    registry.register("m", counter.factory)
    registry.alias("nick", "m")
    assert registry.resolve("nick") == "m"
    assert await registry.get("nick") is await registry.get("m")
    assert registry.names() == ["m", "nick"]
    await registry.remove("nick")
    assert "nick" not in registry
    registry.alias("nick", "m")
    await registry.remove("m")  # a model takes its aliases with it
    assert registry.names() == []
    with pytest.raises(ModelNotFound):
        registry.resolve("nick")
    with pytest.raises(ModelNotFound):
        registry.alias("x", "nope")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5m", 300), ("30s", 30), ("1h", 3600), ("500ms", 0.5), (0, 0), ("0", 0), (90, 90),
     (-1, None), ("-1", None), ("-5m", None), (None, None)],
)  # fmt: skip
def test_parse_keep_alive(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", True, "1d"])
def test_parse_keep_alive_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_keep_alive(value)


async def test_derived_models_persist_in_the_catalog(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "models.json"
    counter = Counting()
    first = ModelRegistry(catalog=Catalog(path))
    first.register("m", counter.factory)
    first.alias("pirate", "m", Profile(system="Talk like a pirate.", options={"temperature": 0.2}))
    first.alias("pirate-hot", "pirate", Profile(options={"temperature": 1.5}))
    first.alias("copy", "m")
    with pytest.raises(Conflict):
        first.alias("m", "copy")

    again = ModelRegistry(catalog=Catalog(path))
    again.register("m", counter.factory)
    again.load_catalog()
    assert again.aliases() == {"pirate": "m", "pirate-hot": "m", "copy": "m"}
    assert again.profile("pirate-hot") == Profile(
        system="Talk like a pirate.", options={"temperature": 1.5}
    )
    assert again.profile("copy").empty and again.profile("m").empty
    await again.remove("pirate")
    third = ModelRegistry(catalog=Catalog(path))
    third.register("m", counter.factory)
    third.load_catalog()
    assert sorted(third.aliases()) == ["copy", "pirate-hot"]


def test_a_broken_catalog_is_ignored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "models.json"
    path.write_text("{not json")
    registry = ModelRegistry(catalog=Catalog(path))
    registry.register("m", Counting().factory)
    registry.load_catalog()
    assert registry.names() == ["m"]


async def test_a_removed_model_finishes_the_requests_holding_it() -> None:
    counter = Counting()
    registry = ModelRegistry()
    registry.register("m", counter.factory)
    async with registry.lease("m") as backend:
        await registry.remove("m")
        with pytest.raises(ModelNotFound):
            await registry.get("m")  # new requests no longer find it
        assert counter.closed == 0  # the one running goes on
        assert await backend.tokenize("still here")
    assert counter.closed == 1  # unloaded when its last lease ended
    await registry.close()
    assert counter.closed == 1


async def test_closing_unloads_a_removed_model_still_held() -> None:
    counter = Counting()
    registry = ModelRegistry()
    registry.register("m", counter.factory)
    _, release = await registry.acquire("m")
    await registry.remove("m")
    await registry.close()  # shutting down with a request still on it
    assert counter.closed == 1
    await release()
    assert counter.closed == 1


# ---- what a key limited to some models sees (core/principal) -------------------------


def _limited_registry() -> ModelRegistry:
    registry = ModelRegistry()
    for name in ("small", "big"):
        registry.register(name, Counting().factory)
    registry.alias("small-nick", "small")
    registry.alias("big-nick", "big", Profile(system="Be brief."))
    return registry


def _as(key: Principal, work):  # type: ignore[no-untyped-def]
    """Run `work()` in a task acting for `key`, as a request's handler does."""

    async def request():  # type: ignore[no-untyped-def]
        principal.act_as(key, "openai")
        return await work()

    return asyncio.create_task(request())


def _not_found(registry: ModelRegistry, name: str) -> tuple[type, str, str | None, str | None]:
    with pytest.raises(ModelNotFound) as info:
        registry.resolve(name)
    err = info.value
    return type(err), err.message.replace(name, "NAME"), err.param, err.code


async def test_a_limited_key_sees_its_models_and_their_aliases_only() -> None:
    registry = _limited_registry()
    # "big-nick" is listed by its own name: the alias is seen, the model behind it is not.
    key = Principal(name="team", models=frozenset({"small", "big-nick"}))

    async def look():  # type: ignore[no-untyped-def]
        await registry.get("small")
        await registry.get("big-nick")
        return {
            "names": registry.names(),
            "aliases": registry.aliases(),
            "contains": [n in registry for n in ("small", "small-nick", "big", "big-nick")],
            "status": [s.name for s in registry.status()],
            "profile": registry.profile("big-nick").system,
            "resolved": registry.resolve("small-nick"),
        }

    seen = await _as(key, look)
    assert seen == {
        "names": ["small", "small-nick", "big-nick"],
        "aliases": {"small-nick": "small", "big-nick": "big"},
        "contains": [True, True, False, True],
        "status": ["small"],  # "big" is loaded (through its alias) but not shown
        "profile": "Be brief.",
        "resolved": "small",
    }
    # Outside any request the server acts as OPEN and sees every model, loaded or not.
    assert registry.names() == ["small", "big", "small-nick", "big-nick"]
    assert [s.state for s in registry.status()] == ["loaded", "loaded"]
    await registry.close()


async def test_a_hidden_model_is_missing_exactly_like_an_unknown_one() -> None:
    registry = _limited_registry()
    key = Principal(name="team", models=frozenset({"small"}))

    async def hidden() -> list[object]:
        refusals: list[object] = [_not_found(registry, n) for n in ("big", "big-nick", "nope")]
        with pytest.raises(ModelNotFound):
            registry.loaded("big")
        for use in (registry.get, registry.unload, registry.acquire):
            with pytest.raises(ModelNotFound):
                await use("big")
        with pytest.raises(ModelNotFound):
            async with registry.lease("big-nick"):
                pass
        refusals.append(registry.profile("big-nick").empty)
        return refusals

    big, big_nick, unknown, empty_profile = await _as(key, hidden)
    expected = (ModelNotFound, "The model 'NAME' does not exist", "model", "model_not_found")
    assert big == big_nick == unknown == expected
    assert empty_profile
    assert registry.loaded("big") is None  # nothing was loaded for the refused key
    await registry.close()


async def test_only_an_admin_key_changes_the_shared_names() -> None:
    registry = _limited_registry()
    key = Principal(name="team", models=frozenset({"small"}))

    async def change() -> list[str]:
        refused = []
        for attempt in (
            lambda: registry.alias("mine", "small"),
            lambda: registry.alias("big", "small"),  # a hidden configured name: no 409
            lambda: registry.check_may_change(),
        ):
            with pytest.raises(Forbidden) as info:
                attempt()
            refused.append(info.value.message)
        for name in ("small-nick", "big-nick"):
            with pytest.raises(Forbidden):
                await registry.remove(name)
        return refused

    assert len(set(await _as(key, change))) == 1
    assert registry.names() == ["small", "big", "small-nick", "big-nick"]
    # Nor may a key without a models list: the names are every tenant's. An admin's may.
    everything = Principal(name="all")

    async def copy() -> list[str]:
        registry.alias("mine", "big")
        return registry.names()

    with pytest.raises(Forbidden):
        await _as(everything, copy)
    assert "mine" in await _as(Principal(name="ops", admin=True), copy)
    await registry.close()


async def test_a_config_entry_sets_keep_alive_profile_and_aliases() -> None:
    counter = Counting()
    registry = ModelRegistry(keep_alive=0)
    profile = Profile(system="Be brief.", options={"temperature": 0.2})
    registry.register("m", counter.factory, keep_alive=None, profile=profile, aliases=("m2",))
    assert registry.names() == ["m", "m2"] and registry.aliases() == {"m2": "m"}
    assert registry.resolve("m2") == "m"
    assert registry.profile("m") == profile and registry.profile("m2") == profile
    await registry.get("m2")
    await registry.reap()  # the entry keeps it for good though the server says 0
    assert registry.loaded("m") is not None
    with pytest.raises(Conflict):
        registry.alias("m2", "m")
    await registry.remove("m")
    assert registry.names() == []
    await registry.close()


async def test_config_aliases_stay_out_of_the_catalog(tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(tmp_path / "models.json")
    registry = ModelRegistry(catalog=catalog)
    registry.register("m", Counting().factory, aliases=("from-config",))
    registry.alias("made", "m")
    assert set(catalog.load()) == {"made"}
