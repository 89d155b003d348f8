"""The models folder: every GGUF file in it is a served model, without a restart.

A file is named by its stem, lower-cased (`Qwen2.5-0.5B-Instruct-Q4_K_M.gguf` →
`qwen2.5-0.5b-instruct-q4_k_m`), or by the name `hearth pull` recorded for it in the
folder's manifest (`.hearth-pulled.json`). A split model (`…-00001-of-00003.gguf`) is one
model, opened by its first part (llama.cpp finds the rest beside it). A file that a
`[[models]]` entry or `--model` already serves is not listed twice. Downloads are written
under `.partial/` and renamed in when complete and verified, so a file still being written
is never picked up; dot-files and folders are never looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.core.model_spec import ModelSpec, valid_model_name
from hearth.engine.gguf_header import read_header
from hearth.engine.registry import BackendFactory, ModelRegistry

log = logging.getLogger(__name__)

MANIFEST = ".hearth-pulled.json"
PARTIAL = ".partial"
_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def read_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """File name of a pulled model's first part → what `pull` recorded (name, repo, …)."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(directory: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Whole or not at all: a reader never sees half a manifest."""
    tmp = directory / f"{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True))
    os.replace(tmp, directory / MANIFEST)


def parts_of(first: Path) -> list[Path]:
    """Every file of a model: the parts of a split one, in order, else the file."""
    match = _PART.search(first.name)
    if match is None:
        return [first]
    stem, count = first.name[: match.start()], int(match.group(2))
    return [first.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def _first_parts(directory: Path) -> list[Path]:
    found = []
    with contextlib.suppress(OSError), os.scandir(directory) as it:
        for item in it:
            name = item.name
            if name.startswith(".") or not name.lower().endswith(".gguf"):
                continue
            match = _PART.search(name)
            if match is not None and int(match.group(1)) != 1:
                continue
            if item.is_file():
                found.append(Path(item.path))
    return sorted(found)


def _stem_name(path: Path) -> str:
    return _PART.sub("", path.name).removesuffix(".gguf").removesuffix(".GGUF").lower()


class ModelsFolder:
    """Registers the folder's models with the registry and keeps that up to date."""

    def __init__(
        self,
        directory: Path,
        registry: ModelRegistry,
        factory: Callable[[ModelSpec], BackendFactory],
        configured: dict[str, ModelSpec],
    ) -> None:
        self.directory = directory
        self._registry = registry
        self._factory = factory
        self._configured_names = set(configured)
        self._configured_files = {n: s.path for n, s in configured.items() if s.path}
        self._configured_paths = {_real(s.path) for s in configured.values() if s.path}
        self._served: dict[str, Path] = {}  # name → first part, of the folder's models
        self._stamp: tuple[object, ...] | None = None
        self._skipped: set[tuple[str, Path]] = set()  # logged once
        self._watch: asyncio.Task[None] | None = None

    def taken(self, name: str) -> bool:
        """Whether a name is served by something other than this folder."""
        return name in self._configured_names or (
            name in self._registry.names() and name not in self._served
        )

    def files(self, name: str) -> list[Path] | None:
        """The files of a model from the folder, or None for one served from elsewhere."""
        first = self._served.get(name)
        return parts_of(first) if first is not None else None

    def describe(self, name: str) -> dict[str, int | str]:
        """Size, quantisation and trained context of a model's GGUF (of the folder or
        configured), from its header: what listings show before it is loaded."""
        first = self._served.get(name) or self._configured_files.get(name)
        if first is None:
            return {}
        size = sum(p.stat().st_size for p in parts_of(first) if p.exists())
        header = read_header(first)
        out: dict[str, int | str] = {"size": size}
        if header.quantization:
            out["quantization"] = header.quantization
        if header.context_length:
            out["context_length"] = header.context_length
        return out

    def _changed(self) -> bool:
        # What is there, not the folder's mtime: two changes within one clock tick of
        # the file system would look like one.
        try:
            meta = (self.directory / MANIFEST).stat()
            manifest = (meta.st_mtime_ns, meta.st_size)
        except OSError:
            manifest = (0, 0)
        try:
            names = tuple(sorted(os.listdir(self.directory)))
        except OSError:
            names = ()
        stamp = (names, manifest)
        changed, self._stamp = stamp != self._stamp, stamp
        return changed

    def scan(self) -> list[str]:
        """Register the models new in the folder (cheap when nothing changed); the names."""
        if not self._changed():
            return []
        manifest = read_manifest(self.directory)
        added = []
        for first in _first_parts(self.directory):
            recorded = manifest.get(first.name, {}).get("name")
            name = recorded if isinstance(recorded, str) else _stem_name(first)
            if self._served.get(name) == first:
                continue
            if not self._may_serve(name, first):
                continue
            spec = ModelSpec(name=name, path=first)
            self._registry.register(name, self._factory(spec))
            self._served[name] = first
            added.append(name)
            log.info("serving %s from the models folder as %s", first.name, name)
        return added

    def _may_serve(self, name: str, first: Path) -> bool:
        why = None
        if _real(first) in self._configured_paths:
            return False  # served under its configured name already
        if not valid_model_name(name):
            why = "its name is not a valid model name (letters, digits and . _ : / -)"
        elif name in self._configured_names or name in self._served:
            why = f"the name {name!r} is taken"
        elif not all(p.is_file() for p in parts_of(first)):
            return False  # parts still missing: looked at again when the folder changes
        if why is not None:
            if (name, first) not in self._skipped:
                self._skipped.add((name, first))
                log.warning("models folder: not serving %s: %s", first.name, why)
            return False
        return True

    async def prune(self) -> None:
        """Forget models whose file was removed from the folder (acts as the server)."""
        for name, first in list(self._served.items()):
            if not first.exists():
                del self._served[name]
                if name in self._registry:
                    await self._registry.remove(name)

    def start(self, interval: float = 2.0) -> None:
        """Look at the folder every `interval` seconds (listings look at once too)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    self.scan()
                    await self.prune()
                except Exception:  # keep watching; one bad file must not stop it
                    log.exception("scanning the models folder %s failed", self.directory)

        self._watch = asyncio.create_task(loop())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def delete(self, name: str) -> None:
        """Remove a model of the folder and its files. A request running on it finishes:
        the loaded model maps the file, and the data stays until that mapping goes."""
        await self._registry.remove(name)  # refuses a key that may not change models
        first = self._served.pop(name)
        for part in parts_of(first):
            part.unlink(missing_ok=True)
        manifest = read_manifest(self.directory)
        if manifest.pop(first.name, None) is not None:
            write_manifest(self.directory, manifest)
        log.info("deleted %s from the models folder", first.name)


def _real(path: Path | None) -> Path | None:
    try:
        return path.resolve() if path is not None else None
    except OSError:
        return path
