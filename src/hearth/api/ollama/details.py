"""What Ollama's listings say about a model, read from its GGUF metadata."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from hearth.engine.gguf_header import FILE_TYPES as _FILE_TYPES
from hearth.engine.types import ModelInfo

_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d*(e-?\d+)?$")
# Ollama leaves these out of model_info: the template has its own field, the name is noise.
_HIDDEN = {"general.name", "tokenizer.chat_template"}


def _value(raw: str) -> Any:
    """GGUF values reach us as text; Ollama shows numbers as numbers."""
    if _INT.match(raw):
        return int(raw)
    if _FLOAT.match(raw):
        return float(raw)
    return raw


def details(info: ModelInfo | None) -> dict[str, Any]:
    meta = info.metadata if info is not None else {}
    family = meta.get("general.architecture", "")
    file_type = meta.get("general.file_type", "")
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family] if family else None,
        "parameter_size": meta.get("general.size_label", ""),
        "quantization_level": _FILE_TYPES.get(int(file_type), "") if _INT.match(file_type) else "",
    }


def model_info(info: ModelInfo) -> dict[str, Any]:
    out = {k: _value(v) for k, v in sorted(info.metadata.items()) if k not in _HIDDEN}
    arch = info.metadata.get("general.architecture")
    if arch:  # clients read the context and width from here; fill them in if the file lacks them
        out.setdefault(f"{arch}.context_length", info.context_length)
        out.setdefault(f"{arch}.embedding_length", info.embedding_length)
    return out


def digest(name: str, info: ModelInfo | None) -> str:
    """A stable identity for a served model (not a hash of its weights: that would mean
    reading gigabytes to list models)."""
    key = f"{name}:{info.size_bytes}:{info.created}" if info is not None else name
    return hashlib.sha256(key.encode()).hexdigest()
