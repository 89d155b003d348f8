"""Builds the registry from settings: which backend serves each configured model."""

from __future__ import annotations

import asyncio
import os

from hearth.core.config import ConfigError, ModelSpec, Settings
from hearth.engine.base import Backend
from hearth.engine.catalog import Catalog, Profile
from hearth.engine.models_folder import ModelsFolder
from hearth.engine.registry import DEFAULT, BackendFactory, KeepAlive, ModelRegistry


def _threads(settings: Settings) -> int:
    return settings.threads or os.cpu_count() or 1


def _gguf_factory(spec: ModelSpec, settings: Settings) -> BackendFactory:
    name, path = spec.name, spec.path
    assert path is not None  # checked by ModelSpec for llama_cpp entries

    async def load() -> Backend:
        # Imported here so that tests and tools that never load a GGUF skip llama.cpp.
        from hearth.engine.llama_cpp.backend import LlamaCppBackend
        from hearth.engine.llama_cpp.scheduler import SchedulerConfig

        config = SchedulerConfig(
            ctx_size=spec.ctx_size or settings.ctx_size,
            parallel=spec.parallel or settings.parallel,
            batch_size=settings.batch_size,
            host_cache_bytes=settings.cache_ram << 20,
            threads=_threads(settings),
            max_queue=settings.max_queue,
            queue_timeout=settings.queue_timeout,
        )
        debug = settings.log_level == "debug"
        return await asyncio.to_thread(
            LlamaCppBackend,
            name,
            path,
            config,
            debug=debug,
            reasoning_format=spec.reasoning_format,
            reasoning_budget=settings.reasoning_budget,
        )

    return load


def _upstream_factory(spec: ModelSpec) -> BackendFactory:
    async def load() -> Backend:
        from hearth.engine.upstream.backend import UpstreamBackend

        return await UpstreamBackend.open(spec)

    return load


def _factory(spec: ModelSpec, settings: Settings) -> BackendFactory:
    if spec.backend == "llama_cpp":
        return _gguf_factory(spec, settings)
    return _upstream_factory(spec)


def _keep_alive(spec: ModelSpec) -> KeepAlive:
    if spec.keep_alive is None:
        # A pool holds no weights here: unloading it would only stop its health checks
        # and reset its members' counts.
        return None if spec.backend == "upstream" else DEFAULT
    return None if spec.keep_alive == "forever" else spec.keep_alive


def _profile(spec: ModelSpec) -> Profile:
    return Profile(system=spec.system, options=dict(spec.options))


def models_folder(settings: Settings, registry: ModelRegistry) -> ModelsFolder:
    """The models folder, registering into `registry` what it finds (scan() to look)."""
    try:
        configured = settings.served_models()
    except ConfigError:  # no model configured nor bundled: the folder's may be all there is
        configured = {}
    return ModelsFolder(
        settings.models_folder, registry, lambda spec: _factory(spec, settings), configured
    )


def build_registry(settings: Settings) -> ModelRegistry:
    catalog = Catalog(settings.data_dir / "models.json")
    registry = ModelRegistry(
        keep_alive=settings.keep_alive,
        catalog=catalog,
        max_loaded=settings.max_loaded_models,
        queue_timeout=settings.queue_timeout,
    )
    for name, spec in settings.served_models().items():
        if spec.parallel and spec.parallel > settings.batch_size:
            raise ConfigError(
                f"model entry {name!r}: parallel ({spec.parallel}) must not exceed "
                f"batch_size ({settings.batch_size})"
            )
        registry.register(
            name,
            _factory(spec, settings),
            keep_alive=_keep_alive(spec),
            profile=_profile(spec),
            aliases=spec.aliases,
            # An upstream pool holds no weights here: only local models count.
            bounded=spec.backend == "llama_cpp",
        )
    registry.load_catalog()
    return registry
