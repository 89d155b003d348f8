"""Builds the registry from settings: which backend serves each configured model."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from hearth.core.config import Settings
from hearth.engine.base import Backend
from hearth.engine.catalog import Catalog
from hearth.engine.registry import ModelRegistry


def _threads(settings: Settings) -> int:
    return settings.threads or os.cpu_count() or 1


def _gguf_factory(name: str, path: Path, settings: Settings):  # type: ignore[no-untyped-def]
    async def load() -> Backend:
        # Imported here so that tests and tools that never load a GGUF skip llama.cpp.
        from hearth.engine.llama_cpp.backend import LlamaCppBackend
        from hearth.engine.llama_cpp.scheduler import SchedulerConfig

        config = SchedulerConfig(
            ctx_size=settings.ctx_size,
            parallel=settings.parallel,
            batch_size=settings.batch_size,
            host_cache_bytes=settings.cache_ram << 20,
            threads=_threads(settings),
            max_queue=settings.max_queue,
            queue_timeout=settings.queue_timeout,
        )
        debug = settings.log_level == "debug"
        return await asyncio.to_thread(LlamaCppBackend, name, path, config, debug=debug)

    return load


def build_registry(settings: Settings) -> ModelRegistry:
    catalog = Catalog(settings.data_dir / "models.json")
    registry = ModelRegistry(keep_alive=settings.keep_alive, catalog=catalog)
    for name, path in settings.served_models().items():
        registry.register(name, _gguf_factory(name, path, settings))
    registry.load_catalog()
    return registry
