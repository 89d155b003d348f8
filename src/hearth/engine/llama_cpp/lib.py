"""The llama.cpp bindings, imported in one place with logging tamed.

llama.cpp logs every load detail to stderr through llama-cpp-python's callback; route it
through the `llama-cpp-python` logger at ERROR unless Hearth runs with debug logging.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import llama_cpp as llama
import llama_cpp._logger

_init_lock = threading.Lock()
_initialised = False


def init_backend(debug: bool = False) -> None:
    global _initialised
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if debug else logging.ERROR)
    with _init_lock:
        if not _initialised:
            llama.llama_backend_init()
            _initialised = True


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX (Intel Sapphire Rapids and later). On such CPUs llama.cpp
    puts quantized weights in its AMX buffers, whose matrix product crashes the process
    at the first prompt (llama.cpp issue #20824, open, seen here on a Xeon with a Q4_1
    model); so do other programs using llama.cpp (dspy's CI dropped the AMX variant)."""
    return has_amx(Path("/proc/cpuinfo"))


def has_amx(cpuinfo: Path) -> bool:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    return any(
        line.startswith("flags") and "amx_int8" in line.split() for line in text.splitlines()
    )


__all__ = ["cpu_has_amx", "has_amx", "init_backend", "llama"]
