"""engine/models_folder: what in a folder is a model, and under which name."""

from __future__ import annotations

import os
from pathlib import Path

from hearth.core.model_spec import ModelSpec
from hearth.engine.base import Backend
from hearth.engine.fake import FakeBackend
from hearth.engine.models_folder import PARTIAL, ModelsFolder, write_manifest
from hearth.engine.registry import BackendFactory, ModelRegistry
from tests.fakehub import gguf_bytes


def _factory(spec: ModelSpec) -> BackendFactory:
    async def load() -> Backend:
        assert spec.path is not None and spec.path.is_file()
        return FakeBackend(spec.name)

    return load


def _folder(path: Path, configured: dict[str, ModelSpec] | None = None) -> ModelsFolder:
    return ModelsFolder(path, ModelRegistry(), _factory, configured or {})


def _touch_dir(path: Path) -> None:
    # A second scan within the folder's mtime granularity must still see a change.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_every_gguf_is_a_model_named_by_its_stem(tmp_path: Path) -> None:
    (tmp_path / "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf").write_bytes(gguf_bytes(100))
    (tmp_path / "big-Q8_0-00001-of-00002.gguf").write_bytes(gguf_bytes(100))
    (tmp_path / "big-Q8_0-00002-of-00002.gguf").write_bytes(b"rest")
    (tmp_path / "half-00001-of-00002.gguf").write_bytes(gguf_bytes(100))  # part 2 missing
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / ".hidden.gguf").write_bytes(gguf_bytes(100))
    (tmp_path / PARTIAL).mkdir()
    (tmp_path / PARTIAL / "being-written.gguf").write_bytes(gguf_bytes(100))
    (tmp_path / "bad name!.gguf").write_bytes(gguf_bytes(100))
    folder = _folder(tmp_path)
    assert sorted(folder.scan()) == ["big-q8_0", "qwen2.5-0.5b-instruct-q4_k_m"]
    assert folder.files("big-q8_0") == [
        tmp_path / "big-Q8_0-00001-of-00002.gguf",
        tmp_path / "big-Q8_0-00002-of-00002.gguf",
    ]
    assert folder.scan() == []  # nothing changed: nothing new


def test_a_pulled_model_keeps_its_recorded_name(tmp_path: Path) -> None:
    (tmp_path / "tiny-Q4_K_M.gguf").write_bytes(gguf_bytes(100))
    write_manifest(tmp_path, {"tiny-Q4_K_M.gguf": {"name": "hf.co/fake/tiny-GGUF:Q4_K_M"}})
    assert _folder(tmp_path).scan() == ["hf.co/fake/tiny-GGUF:Q4_K_M"]


def test_new_files_are_seen_and_a_configured_one_is_not_listed_twice(tmp_path: Path) -> None:
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(gguf_bytes(100))
    folder = _folder(tmp_path, {"configured": ModelSpec(name="configured", path=mine)})
    assert folder.scan() == []
    (tmp_path / "later.gguf").write_bytes(gguf_bytes(100))
    _touch_dir(tmp_path)
    assert folder.scan() == ["later"]
    assert folder.taken("configured") and not folder.taken("later")


async def test_delete_removes_the_files_and_prune_forgets_vanished_ones(tmp_path: Path) -> None:
    (tmp_path / "a-00001-of-00002.gguf").write_bytes(gguf_bytes(100))
    (tmp_path / "a-00002-of-00002.gguf").write_bytes(b"rest")
    (tmp_path / "b.gguf").write_bytes(gguf_bytes(100))
    write_manifest(tmp_path, {"a-00001-of-00002.gguf": {"name": "alpha"}})
    registry = ModelRegistry()
    folder = ModelsFolder(tmp_path, registry, _factory, {})
    folder.scan()
    assert sorted(registry.names()) == ["alpha", "b"]
    await registry.get("alpha")
    await folder.delete("alpha")
    assert sorted(os.listdir(tmp_path)) == [".hearth-pulled.json", "b.gguf"]
    assert (tmp_path / ".hearth-pulled.json").read_text().strip() == "{}"
    (tmp_path / "b.gguf").unlink()
    await folder.prune()
    assert registry.names() == []


def test_describe_reads_the_header_and_survives_a_file_that_is_not_gguf(
    tmp_path: Path, model_path: Path
) -> None:
    (tmp_path / "real.gguf").symlink_to(model_path)
    (tmp_path / "fake.gguf").write_bytes(gguf_bytes(1000))
    folder = _folder(tmp_path)
    folder.scan()
    size = model_path.stat().st_size
    assert folder.describe("real") == {"size": size, "quantization": "Q4_1", "context_length": 8192}
    assert folder.describe("fake") == {"size": 1000}
    assert folder.describe("unknown") == {}
