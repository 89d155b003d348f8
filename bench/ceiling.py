"""The engine's own ceiling: llama.cpp's batched greedy decode, driven directly.

No server, no HTTP, no scheduler: llama-cpp-python's low-level API (through Hearth's own
LlamaModel and TokenBatch wrappers) on a context set up as Hearth's server sets up its
own (unified KV cache, the same n_ctx, n_batch = n_ubatch, threads). For each batch size
B it prefills B of run.py's prompts, rendered with the model's chat template exactly as a
chat request renders them (packed into as few llama_decode calls as n_batch allows), then
decodes all B sequences in lock-step, one token each per llama_decode, the next token of
every sequence being one numpy argmax over the rows of llama_get_logits. Each sequence
gets `tokens` completion tokens, the first from the prefill's logits, as a server's
reply does (so `tokens - 1` decode steps). End tokens are not banned: argmax may pick
one and decoding simply goes on, which costs the same as any other token.

Reported per B: decode tokens/s (tokens from decode steps ÷ the decode steps' wall time,
prefill excluded) and tokens/s including prefill (all generated tokens ÷ prefill + decode).
`python bench/ceiling.py` prints them; run.py calls `measure()` between server runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hearth.chat.templates import ChatTemplate
from hearth.core.config import Settings, bundled_model_path
from hearth.engine.llama_cpp.batch import TokenBatch
from hearth.engine.llama_cpp.lib import llama
from hearth.engine.llama_cpp.model import LlamaModel
from prompts import PROMPTS

DEFAULT_BATCH_SIZE = Settings.model_fields["batch_size"].default  # Hearth's n_batch


@dataclass
class CeilingResult:
    batch: int
    prompt_tokens: int  # all B prompts together
    tokens: int  # completion tokens generated, all B sequences together
    prefill_ms: float
    decode_s: float
    decode_tokens_per_s: float
    with_prefill_tokens_per_s: float


def chat_prompts(model: LlamaModel, n: int) -> list[list[int]]:
    """run.py's prompts as a one-message chat each, rendered and tokenized as Hearth's
    llama.cpp backend does for /v1/chat/completions."""
    template = ChatTemplate(
        model.chat_template,
        bos_token=model.token_text(model.bos_id) if model.bos_id >= 0 else "",
        eos_token=model.token_text(model.eos_id) if model.eos_id >= 0 else "",
    )
    out = []
    for i in range(n):
        text = template.render([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
        bos = template.bos_token
        add_bos = model.add_bos and not (bos and text.startswith(bos))
        out.append(model.tokenize(text, add_special=add_bos, parse_special=True))
    return out


class Context:
    """One llama.cpp context, configured as Hearth's scheduler configures its own."""

    def __init__(
        self, model: LlamaModel, *, threads: int, ctx_size: int, batch_size: int, n_seq: int
    ) -> None:
        params = llama.llama_context_default_params()
        params.n_ctx = ctx_size
        params.n_batch = batch_size
        params.n_ubatch = batch_size
        params.n_seq_max = n_seq
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = True
        params.no_perf = True
        self.ptr = llama.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise RuntimeError("llama.cpp could not create a context")
        self.model = model
        self.mem = llama.llama_get_memory(self.ptr)
        self.batch = TokenBatch(batch_size)

    def close(self) -> None:
        if self.ptr:
            llama.llama_free(self.ptr)
            self.ptr = None

    def _decode(self) -> None:
        rc = self.batch.decode(self.ptr)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def _argmax(self, rows: int) -> np.ndarray:
        ptr = llama.llama_get_logits(self.ptr)
        logits = np.ctypeslib.as_array(ptr, shape=(rows, self.model.n_vocab))
        return logits.argmax(axis=1).astype(np.int32)

    def prefill(self, prompts: list[list[int]]) -> np.ndarray:
        """Every prompt into the cache (sequence i holds prompt i), chunked over as few
        batches as n_batch allows; returns each sequence's first token."""
        first = np.zeros(len(prompts), dtype=np.int32)
        done = [0] * len(prompts)
        batch = self.batch
        while any(done[s] < len(p) for s, p in enumerate(prompts)):
            batch.clear()
            finished: list[int] = []  # sequences whose last prompt token is in this batch
            for s, prompt in enumerate(prompts):
                take = min(len(prompt) - done[s], batch.room)
                if take <= 0:
                    continue
                last = done[s] + take == len(prompt)
                batch.add(prompt[done[s] : done[s] + take], done[s], s, last)
                done[s] += take
                if last:
                    finished.append(s)
            self._decode()
            if finished:  # logits rows come in batch order, which is `finished`'s order
                first[finished] = self._argmax(len(finished))
        return first

    def decode(self, tokens: np.ndarray, positions: np.ndarray, steps: int) -> None:
        """`steps` lock-step decodes of every sequence, one token each, greedy."""
        b = len(tokens)
        batch = self.batch
        batch.seq_ids[:b] = np.arange(b, dtype=np.int32)
        batch.n_seq_id[:b] = 1
        batch.logits[:b] = 1
        batch.n = b
        for _ in range(steps):
            batch.tokens[:b] = tokens
            batch.pos[:b] = positions
            self._decode()
            tokens = self._argmax(b)
            positions = positions + 1

    def run(self, prompts: list[list[int]], tokens: int) -> CeilingResult:
        llama.llama_memory_clear(self.mem, True)
        b = len(prompts)
        start = time.perf_counter()
        first = self.prefill(prompts)
        prefilled = time.perf_counter()
        positions = np.array([len(p) for p in prompts], dtype=np.int32)
        self.decode(first, positions, tokens - 1)
        end = time.perf_counter()
        decode_s = end - prefilled
        return CeilingResult(
            batch=b,
            prompt_tokens=int(positions.sum()),
            tokens=b * tokens,
            prefill_ms=round((prefilled - start) * 1000, 1),
            decode_s=round(decode_s, 3),
            decode_tokens_per_s=round(b * (tokens - 1) / decode_s, 2) if decode_s else 0.0,
            with_prefill_tokens_per_s=round(b * tokens / (end - start), 2),
        )


def measure(
    model_path: Path,
    *,
    threads: int,
    ctx_size: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    parallel: int = 8,
    batches: tuple[int, ...] | list[int] = (1, 8, 16),
    tokens: int = 128,
) -> list[CeilingResult]:
    """The ceiling at each batch size, on one context (n_seq_max: the server's slot count,
    or the largest batch where that is more). A short unmeasured run at the largest batch
    comes first, so that no measured one pays for the first graph's allocations."""
    model = LlamaModel(Path(model_path))
    ctx: Context | None = None
    try:
        n_seq = max(parallel, *batches)
        ctx = Context(model, threads=threads, ctx_size=ctx_size, batch_size=batch_size, n_seq=n_seq)
        prompts = chat_prompts(model, max(batches))
        ctx.run(prompts, min(tokens, 8))  # warm-up
        results = [ctx.run(prompts[:b], tokens) for b in batches]
        llama.llama_memory_clear(ctx.mem, True)
        return results
    finally:
        if ctx is not None:
            ctx.close()
        model.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=bundled_model_path())
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx-size", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--parallel", type=int, default=8, help="the server's slot count")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--tokens", type=int, default=128, help="completion tokens a sequence")
    parser.add_argument(
        "--json", action="store_true", help="print the results as one JSON list (bench/run.py)"
    )
    args = parser.parse_args()
    if args.model is None or not Path(args.model).is_file():
        raise SystemExit("no model file: pass --model PATH.gguf")
    if args.tokens < 2:
        raise SystemExit("--tokens must be at least 2 (one from the prefill, one decoded)")
    results = measure(
        args.model,
        threads=args.threads,
        ctx_size=args.ctx_size,
        batch_size=args.batch_size,
        parallel=args.parallel,
        batches=args.batches,
        tokens=args.tokens,
    )
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
        return 0
    print(
        f"{Path(args.model).name}, {args.threads} threads, n_ctx {args.ctx_size}, "
        f"n_batch {args.batch_size}, {args.tokens} tokens a sequence"
    )
    print("batch  prompt tok  prefill ms  decode tok/s  with prefill tok/s")
    for r in results:
        print(
            f"{r.batch:5d}  {r.prompt_tokens:10d}  {r.prefill_ms:10.1f}  "
            f"{r.decode_tokens_per_s:12.1f}  {r.with_prefill_tokens_per_s:18.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
