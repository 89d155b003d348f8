"""Log-probabilities of sampled tokens, from the raw logits row of the model."""

from __future__ import annotations

import numpy as np

from hearth.engine.llama_cpp.model import LlamaModel
from hearth.engine.types import TokenLogprob, TopLogprob


def token_logprob(model: LlamaModel, logits: np.ndarray, token: int, k: int) -> TokenLogprob:
    row = logits.astype(np.float64)
    row -= row.max()
    logp = row - np.log(np.exp(row).sum())
    top: tuple[TopLogprob, ...] = ()
    if k > 0:
        best = np.argpartition(logp, -k)[-k:]
        best = best[np.argsort(logp[best])[::-1]]
        top = tuple(_top(model, int(t), float(logp[t])) for t in best)
    piece = model.piece(int(token))
    return TokenLogprob(
        token=piece.decode("utf-8", "replace"),
        bytes=piece,
        logprob=float(logp[token]),
        top=top,
    )


def _top(model: LlamaModel, token: int, logprob: float) -> TopLogprob:
    piece = model.piece(token)
    return TopLogprob(token=piece.decode("utf-8", "replace"), bytes=piece, logprob=logprob)
