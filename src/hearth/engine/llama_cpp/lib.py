"""The llama.cpp bindings, imported in one place with logging tamed.

llama.cpp logs every load detail to stderr through llama-cpp-python's callback; route it
through the `llama-cpp-python` logger at ERROR unless Hearth runs with debug logging.
"""

from __future__ import annotations

import logging
import threading

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


__all__ = ["init_backend", "llama"]
