"""Embeddings on a second llama.cpp context of the same weights, so they never wait
behind (or stall) the generation scheduler. Mean-pooled, L2-normalised like OpenAI's."""

from __future__ import annotations

import threading

import numpy as np

from hearth.core.errors import ContextLengthExceeded, EngineError
from hearth.engine.llama_cpp.batch import TokenBatch
from hearth.engine.llama_cpp.lib import llama
from hearth.engine.llama_cpp.model import LlamaModel


class Embedder:
    def __init__(self, model: LlamaModel, *, ctx_size: int, threads: int) -> None:
        self.model = model
        n_ctx = max(64, min(ctx_size, model.n_ctx_train or ctx_size, 4096))
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_ctx
        params.n_ubatch = n_ctx  # a pooled embedding needs the whole input in one ubatch
        params.n_seq_max = 1
        params.n_threads = threads
        params.n_threads_batch = threads
        params.embeddings = True
        params.pooling_type = llama.LLAMA_POOLING_TYPE_MEAN
        params.no_perf = True
        self.ctx = llama.llama_init_from_model(model.ptr, params)
        if not self.ctx:
            raise EngineError("llama.cpp could not create an embedding context")
        self.limit = int(llama.llama_n_ctx(self.ctx))
        self.mem = llama.llama_get_memory(self.ctx)
        self._batch = TokenBatch(self.limit)
        self._lock = threading.Lock()

    def check(self, tokens: list[int], index: int) -> None:
        if len(tokens) > self.limit:
            raise ContextLengthExceeded(
                f"input {index} has {len(tokens)} tokens; this model embeds at most "
                f"{self.limit} tokens per input",
                param="input",
            )

    def embed(
        self, token_lists: list[list[int]], stop: threading.Event | None = None
    ) -> list[list[float]]:
        """Blocking; call from a worker thread. Once `stop` is set (the caller was
        cancelled) it returns at the next input, with the vectors so far."""
        out: list[list[float]] = []
        with self._lock:
            for tokens in token_lists:
                if stop is not None and stop.is_set():
                    break
                llama.llama_memory_clear(self.mem, True)
                self._batch.clear()
                self._batch.add(tokens, 0, 0, True)
                self._batch.logits[: len(tokens)] = 1
                if self._batch.decode(self.ctx) != 0:
                    raise EngineError("llama.cpp failed to compute an embedding")
                ptr = llama.llama_get_embeddings_seq(self.ctx, 0)
                if not ptr:
                    raise EngineError("llama.cpp returned no pooled embedding")
                vec = np.ctypeslib.as_array(ptr, shape=(self.model.n_embd,)).astype(np.float64)
                norm = float(np.linalg.norm(vec))
                out.append((vec / norm if norm > 0 else vec).tolist())
        return out

    def close(self) -> None:
        with self._lock:  # a cancelled caller's thread may still be on its last input
            if self.ctx:
                llama.llama_free(self.ctx)
                self.ctx = None
