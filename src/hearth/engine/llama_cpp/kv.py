"""Bookkeeping of the unified KV cache: which slot holds which tokens in which cells.

llama.cpp tags cells with sequence ids but cannot say how many cells are in use, and a
prefix shared between slots (`llama_memory_seq_cp`) occupies its cells once. So every
token a slot holds gets a cell id here, with a reference count per id: `used` is exact
whether prefixes are shared or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from hearth.engine.llama_cpp.lib import llama

if TYPE_CHECKING:
    from hearth.engine.llama_cpp.scheduler import Sequence


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


@dataclass(eq=False)
class Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)  # exactly what this seq id has in cache
    cells: list[int] = field(default_factory=list)  # the cell id of each of those tokens
    last_used: float = 0.0
    seq: Sequence | None = None


class KvMemory(Protocol):
    """What the bookkeeping asks of the context's memory (a protocol, so the placement
    policy above it is tested without a model)."""

    def remove(self, seq_id: int, start: int) -> None:
        """Forget a sequence's positions from `start` on."""

    def copy(self, src: int, dst: int, end: int) -> None:
        """Make dst hold src's positions before `end`, sharing their cells."""


class LlamaMemory:
    def __init__(self, mem: object) -> None:
        self.mem = mem

    def remove(self, seq_id: int, start: int) -> None:
        llama.llama_memory_seq_rm(self.mem, seq_id, start, -1)

    def copy(self, src: int, dst: int, end: int) -> None:
        llama.llama_memory_seq_cp(self.mem, src, dst, 0, end)


class KvCache:
    def __init__(self, memory: KvMemory, n_cells: int, n_slots: int) -> None:
        self.memory = memory
        self.n_cells = n_cells
        self.slots = [Slot(seq_id=i) for i in range(n_slots)]
        self._refs: dict[int, int] = {}
        self._next_id = 0

    @property
    def used(self) -> int:
        return len(self._refs)

    @property
    def free(self) -> int:
        return self.n_cells - self.used

    def append(self, slot: Slot, tokens: list[int]) -> None:
        """Record tokens just placed in a batch for this slot (each gets a new cell)."""
        start = self._next_id
        self._next_id += len(tokens)
        ids = range(start, start + len(tokens))
        self._refs.update(dict.fromkeys(ids, 1))
        slot.tokens.extend(tokens)
        slot.cells.extend(ids)

    def trim(self, slot: Slot, keep: int) -> None:
        """Drop the slot's tokens from position `keep` on."""
        if keep >= len(slot.tokens):
            return
        self.memory.remove(slot.seq_id, keep)
        for cell in slot.cells[keep:]:
            left = self._refs[cell] - 1
            if left:
                self._refs[cell] = left
            else:
                del self._refs[cell]
        del slot.tokens[keep:]
        del slot.cells[keep:]

    def share(self, src: Slot, dst: Slot, keep: int) -> None:
        """Make dst hold src's first `keep` tokens, sharing their cells (no copy of data)."""
        self.trim(dst, 0)
        self.memory.copy(src.seq_id, dst.seq_id, keep)
        dst.tokens = src.tokens[:keep]
        dst.cells = src.cells[:keep]
        for cell in dst.cells:
            self._refs[cell] += 1

    def best_source(self, tokens: list[int]) -> tuple[Slot | None, int]:
        """The slot (busy or idle) whose cached tokens share the longest prefix."""
        best: Slot | None = None
        best_len = 0
        for slot in self.slots:
            n = common_prefix(slot.tokens, tokens)
            if n > best_len:
                best, best_len = slot, n
        return best, best_len

    def exclusive(self, slot: Slot) -> int:
        """How many of the slot's cells no other slot shares."""
        return sum(1 for cell in slot.cells if self._refs[cell] == 1)

    def evict_idle(
        self, need: int, keep: Slot | None = None, save: Callable[[Slot], None] | None = None
    ) -> bool:
        """Drop idle slots' caches, least recently used first, until `need` cells are
        free; `save` sees each before it goes."""
        if self.free >= need:  # the common case, asked before every step
            return True
        idle = sorted(
            (s for s in self.slots if s.seq is None and s.tokens and s is not keep),
            key=lambda s: s.last_used,
        )
        for slot in idle:
            if self.free >= need:
                break
            if save is not None:
                save(slot)
            self.trim(slot, 0)
        return self.free >= need
