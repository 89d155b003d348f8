"""What a GGUF file's header says about it, read without loading it: its quantisation
(`general.file_type`) and trained context length (`<arch>.context_length`). Listings show
them for models not loaded yet; the read stops at the first key/value pair past those
(or at the tensors), and is cached by the file's size and mtime."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# llama.cpp's `enum llama_ftype`: the names the quantisations go by.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}  # fmt: skip
# GGUF value types → struct format of the scalars (8: string, 9: array).
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_MAX_KV = 100_000


@dataclass(frozen=True, slots=True)
class GgufHeader:
    quantization: str | None
    context_length: int | None


def read_header(path: Path) -> GgufHeader:
    """The header's facts; none known for a file that is not GGUF or cannot be read."""
    try:
        stat = path.stat()
        return _cached(path, stat.st_size, stat.st_mtime_ns)
    except OSError:
        return GgufHeader(None, None)


@functools.lru_cache(maxsize=256)
def _cached(path: Path, size: int, mtime_ns: int) -> GgufHeader:
    try:
        with path.open("rb") as fh:
            return _parse(fh)
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        return GgufHeader(None, None)


def _read(fh: BinaryIO, fmt: str) -> int | float | bool:
    size = struct.calcsize("<" + fmt)
    data = fh.read(size)
    if len(data) != size:
        raise ValueError("truncated")
    value: int | float | bool = struct.unpack("<" + fmt, data)[0]
    return value


def _string(fh: BinaryIO) -> str:
    n = int(_read(fh, "Q"))
    if n > 1 << 24:
        raise ValueError("implausible string")
    return fh.read(n).decode("utf-8")


def _value(fh: BinaryIO, kind: int) -> object:
    if kind == 8:
        return _string(fh)
    if kind == 9:  # skipped, not kept: vocabularies are large
        item, count = int(_read(fh, "I")), int(_read(fh, "Q"))
        if item in _SCALARS:
            fh.seek(struct.calcsize("<" + _SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _value(fh, item)
        return None
    if kind not in _SCALARS:
        raise ValueError(f"unknown GGUF value type {kind}")
    return _read(fh, _SCALARS[kind])


def _parse(fh: BinaryIO) -> GgufHeader:
    if fh.read(4) != b"GGUF":
        raise ValueError("not GGUF")
    _read(fh, "I")  # version
    _read(fh, "Q")  # tensors
    count = int(_read(fh, "Q"))
    arch, file_type, context = None, None, None
    for _ in range(min(count, _MAX_KV)):
        key = _string(fh)
        value = _value(fh, int(_read(fh, "I")))
        if key == "general.architecture":
            arch = value
        elif key == "general.file_type" and isinstance(value, int):
            file_type = value
        elif (
            key.endswith(".context_length")
            and isinstance(value, int)
            and (arch is None or key == f"{arch}.context_length")
        ):
            context = value
        if arch is not None and file_type is not None and context is not None:
            break
    quant = FILE_TYPES.get(file_type) if file_type is not None else None
    return GgufHeader(quant, context)
