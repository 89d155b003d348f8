"""Idle sequences' KV cells, parked in host memory.

A cell in the unified KV cache costs every decoding token attention work, whichever
sequence it belongs to: llama.cpp's CPU attention visits every cell up to the highest
one in use and only then skips those its mask hides. Measured with the bundled model,
15 idle caches of 170 tokens made each decode step of another sequence 7% slower, and
2,200 idle cells made a 1,500-token prompt take 45% longer. So a slot that goes idle
while others work is copied here (`llama_state_seq_get_data`) and cleared from the
context; a later request whose tokens continue one of these entries gets it copied back
(`llama_state_seq_set_data`) instead of decoding those tokens again. Copying costs
microseconds a token; decoding it, milliseconds. This is what llama-server does with
`--cache-ram` and idle slots.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hearth.engine.llama_cpp.kv import common_prefix
from hearth.engine.llama_cpp.lib import llama


@dataclass(eq=False)
class Parked:
    tokens: list[int]
    state: np.ndarray  # llama.cpp's serialised cells of one sequence


def _ptr(buf: np.ndarray) -> object:
    return buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))


class SeqStates(Protocol):
    """Copies of one sequence's cells out of the context and back (a protocol, so the
    placement policy above it is tested without a model)."""

    def save(self, seq_id: int, limit: int) -> np.ndarray | None:
        """The sequence's serialised cells; None if there are none, they are larger than
        `limit` bytes, or the copy failed."""

    def restore(self, state: np.ndarray, seq_id: int) -> bool:
        """Put them into the (empty) sequence; False, leaving it empty, if they do not fit."""


class LlamaSeqStates:
    def __init__(self, ctx: object) -> None:
        self.ctx = ctx

    def save(self, seq_id: int, limit: int) -> np.ndarray | None:
        size = int(llama.llama_state_seq_get_size(self.ctx, seq_id))
        if size == 0 or size > limit:
            return None
        state = np.empty(size, dtype=np.uint8)
        if int(llama.llama_state_seq_get_data(self.ctx, _ptr(state), size, seq_id)) != size:
            return None
        return state

    def restore(self, state: np.ndarray, seq_id: int) -> bool:
        if int(llama.llama_state_seq_set_data(self.ctx, _ptr(state), state.size, seq_id)) == 0:
            llama.llama_memory_seq_rm(llama.llama_get_memory(self.ctx), seq_id, -1, -1)
            return False
        return True


class HostCache:
    """Parked sequences, least recently used first out, within a byte budget."""

    def __init__(self, states: SeqStates, budget_bytes: int) -> None:
        self.states = states
        self.budget = budget_bytes
        self.used = 0
        self._entries: OrderedDict[int, Parked] = OrderedDict()
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def park(self, seq_id: int, tokens: list[int]) -> bool:
        """Copy one sequence's cells here; False if they do not fit or the copy fails."""
        if not tokens or not self.budget:
            return False
        state = self.states.save(seq_id, self.budget)
        if state is None:
            return False
        # An entry this one extends holds nothing this one does not.
        for key, entry in list(self._entries.items()):
            if len(entry.tokens) <= len(tokens) and tokens[: len(entry.tokens)] == entry.tokens:
                self._drop(key)
        self.put(Parked(list(tokens), state))
        return True

    def put(self, entry: Parked) -> None:
        """Keep an entry (a new one, or one taken that could not be loaded after all) as
        the most recent, dropping the least recent while over budget."""
        size = entry.state.size
        while self.used + size > self.budget and self._entries:
            self._drop(next(iter(self._entries)))
        self._entries[self._next] = entry
        self._next += 1
        self.used += size

    def best(self, tokens: list[int]) -> tuple[int | None, int]:
        """The entry sharing the longest prefix with tokens, and that length."""
        best: int | None = None
        best_len = 0
        for key, entry in self._entries.items():
            n = common_prefix(entry.tokens, tokens)
            if n > best_len:
                best, best_len = key, n
        return best, best_len

    def take(self, key: int) -> Parked:
        """Remove an entry, to be loaded into a sequence."""
        return self._drop(key)

    def load(self, entry: Parked, seq_id: int) -> bool:
        """Copy an entry's cells into the (empty) sequence seq_id. False if llama.cpp
        could not place them; the sequence is left empty then."""
        return self.states.restore(entry.state, seq_id)

    def _drop(self, key: int) -> Parked:
        entry = self._entries.pop(key)
        self.used -= entry.state.size
        return entry
