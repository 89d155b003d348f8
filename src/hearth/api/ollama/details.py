"""What Ollama's listings say about a model, read from its GGUF metadata."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from hearth.engine.types import ModelInfo

# llama.cpp's `general.file_type` (enum llama_ftype) → the names Ollama shows.
_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
}

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
