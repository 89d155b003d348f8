"""A small llama.cpp context over the bundled model, for the engine's bookkeeping to be
checked against what llama.cpp itself holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hearth.engine.llama_cpp.batch import TokenBatch
from hearth.engine.llama_cpp.lib import llama
from hearth.engine.llama_cpp.model import LlamaModel

N_CELLS = 256
N_SEQ = 4


class Context:
    """One llama.cpp context with a unified KV cache of N_CELLS cells, as the scheduler
    makes it (kv_unified: any sequence may use any cell)."""

    def __init__(self, model: LlamaModel) -> None:
        params = llama.llama_context_default_params()
        params.n_ctx = N_CELLS
        params.n_batch = params.n_ubatch = 128
        params.n_seq_max = N_SEQ
        params.n_threads = params.n_threads_batch = 1
        params.kv_unified = True
        params.no_perf = True
        self.ptr = llama.llama_init_from_model(model.ptr, params)
        assert self.ptr, "llama.cpp could not create a context"
        self.mem = llama.llama_get_memory(self.ptr)
        self.n_vocab = model.n_vocab
        self.batch = TokenBatch(128)

    def pos_max(self, seq_id: int) -> int:
        """The last position llama.cpp holds for the sequence; -1 when it holds none."""
        return int(llama.llama_memory_seq_pos_max(self.mem, seq_id))

    def decode(self, seq_id: int, tokens: list[int], start: int) -> np.ndarray:
        """Decodes one run of a sequence; the logits after its last token."""
        self.batch.clear()
        last = self.batch.add(tokens, start, seq_id, want_last=True)
        assert self.batch.decode(self.ptr) == 0
        return self.logits(last)

    def logits(self, index: int) -> np.ndarray:
        ptr = llama.llama_get_logits_ith(self.ptr, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def close(self) -> None:
        llama.llama_free(self.ptr)


@pytest.fixture(scope="package")
def model(model_path: Path) -> Iterator[LlamaModel]:
    loaded = LlamaModel(model_path)
    yield loaded
    loaded.close()


@pytest.fixture
def ctx(model: LlamaModel) -> Iterator[Context]:
    context = Context(model)
    yield context
    context.close()
