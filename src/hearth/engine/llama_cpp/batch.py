"""A llama_batch whose arrays are numpy buffers, so a step fills them with slice writes
instead of one ctypes call per field per token."""

from __future__ import annotations

import ctypes

import numpy as np

from hearth.engine.llama_cpp.lib import llama


class TokenBatch:
    """Up to `capacity` tokens, each belonging to exactly one sequence."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.tokens = np.zeros(capacity, dtype=np.int32)
        self.pos = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.seq_ids = np.zeros(capacity, dtype=np.int32)
        self.logits = np.zeros(capacity, dtype=np.int8)
        # seq_id is an array of pointers, one per token, each at its row of `seq_ids`.
        base = self.seq_ids.ctypes.data
        step = self.seq_ids.itemsize
        self._seq_ptrs = (ctypes.POINTER(llama.llama_seq_id) * capacity)(
            *[
                ctypes.cast(base + i * step, ctypes.POINTER(llama.llama_seq_id))
                for i in range(capacity)
            ]
        )
        self.struct = llama.llama_batch()
        self.struct.token = self.tokens.ctypes.data_as(ctypes.POINTER(llama.llama_token))
        self.struct.embd = None
        self.struct.pos = self.pos.ctypes.data_as(ctypes.POINTER(llama.llama_pos))
        self.struct.n_seq_id = self.n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        self.struct.seq_id = self._seq_ptrs
        self.struct.logits = self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
        self.n = 0

    def clear(self) -> None:
        self.n = 0

    @property
    def room(self) -> int:
        return self.capacity - self.n

    def add(self, tokens: list[int], start_pos: int, seq_id: int, want_last: bool) -> int:
        """Append a run of one sequence's tokens; returns the batch index of the last one."""
        k = len(tokens)
        i = self.n
        self.tokens[i : i + k] = tokens
        self.pos[i : i + k] = np.arange(start_pos, start_pos + k, dtype=np.int32)
        self.seq_ids[i : i + k] = seq_id
        self.logits[i : i + k] = 0
        if want_last:
            self.logits[i + k - 1] = 1
        self.n = i + k
        return i + k - 1

    def decode(self, ctx: object) -> int:
        self.struct.n_tokens = self.n
        return int(llama.llama_decode(ctx, self.struct))
