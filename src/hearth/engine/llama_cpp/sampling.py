"""Per-sequence samplers built from llama.cpp's sampler chain.

Greedy requests without penalties or a grammar need no sampler at all: the scheduler
takes one numpy argmax over the batch's logits for all of them (a logit_bias is added to
a copy of the request's row first).
"""

from __future__ import annotations

import ctypes
import logging
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hearth.core.logtext import Content
from hearth.engine.llama_cpp.lib import llama
from hearth.engine.types import Grammar, SamplingParams

log = logging.getLogger(__name__)


def needs_sampler(params: SamplingParams, grammar: Grammar | None = None) -> bool:
    """Greedy decoding, even with a logit_bias (`Bias`), is an argmax over the batch's
    logits: a llama.cpp chain costs about 0.3 ms a token for this vocabulary, a tenth of a
    small model's decode step at 8 sequences."""
    return not params.greedy or params.penalised or grammar is not None


@dataclass(frozen=True, slots=True, eq=False)
class Bias:
    """A greedy request's logit_bias, added to a copy of its row before the argmax (the
    logits themselves stay as they are: logprobs are of the model's own distribution, as
    with llama.cpp's logit_bias sampler)."""

    ids: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, logit_bias: dict[int, float], n_vocab: int) -> Bias | None:
        # Ids past the vocabulary change nothing (as llama.cpp's sampler ignores them).
        kept = {t: v for t, v in logit_bias.items() if 0 <= t < n_vocab}
        if not kept:
            return None
        ids = np.fromiter(kept.keys(), dtype=np.int64, count=len(kept))
        values = np.fromiter(kept.values(), dtype=np.float32, count=len(kept))
        return cls(ids, values)

    def argmax(self, row: np.ndarray) -> int:
        """Biased in place and put back: a copy would read and write the whole row twice
        more, on the path of every token."""
        kept = row[self.ids]  # fancy indexing copies these few
        row[self.ids] = kept + self.values
        try:
            return int(row.argmax())
        finally:
            row[self.ids] = kept


class GrammarError(ValueError):
    """llama.cpp could not parse a grammar."""


def grammar_sampler(vocab: object, grammar: Grammar) -> object:
    text = grammar.gbnf.encode()
    if grammar.trigger is None:
        sampler = llama.llama_sampler_init_grammar(vocab, text, b"root")
    else:
        # llama.cpp matches this against all the text it was given while it waits; the
        # Sampler gives it only the few tokens that hold the trigger (see _Trigger).
        pattern = rf"[\s\S]*?({re.escape(grammar.trigger)})[\s\S]*"
        patterns = (ctypes.c_char_p * 1)(pattern.encode())
        sampler = llama.llama_sampler_init_grammar_lazy_patterns(
            vocab, text, b"root", patterns, 1, None, 0
        )
    if not sampler:
        raise GrammarError("llama.cpp could not parse the grammar")
    return sampler


def check_grammar(vocab: object, grammar: Grammar) -> None:
    llama.llama_sampler_free(grammar_sampler(vocab, grammar))


# llama_token_data, for handing a whole logits row to samplers without a Python loop.
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


@dataclass(frozen=True, slots=True)
class TokenText:
    """A vocabulary's text, as a lazy grammar's watch needs it."""

    piece: Callable[[int], bytes]  # a token's text as a grammar sees it (specials written)
    tokenize: Callable[[str], list[int]]  # plain text as tokens (specials not parsed)


def _allows(grammar: object, token: int) -> bool:
    one = np.array([(token, 0.0, 0.0)], dtype=_TOKEN_DATA)
    llama.llama_sampler_apply(grammar, ctypes.byref(_candidates(one)))
    return bool(np.isfinite(one["logit"][0]))


class _Trigger:
    """Watches a reply for the text that switches a lazy grammar on, over a bounded tail.

    llama.cpp's lazy grammar keeps every piece of the reply and runs its trigger regex
    (std::regex) over all of it at each token, so each step costs more as the reply grows:
    a long reply with tools offered and no call ends up holding the scheduler thread for
    seconds a token. Here only the last few tokens are kept, those whose text could hold
    the trigger, and the grammar is handed just them once the trigger appears.

    The grammar must be able to go on from what follows the trigger in the token that
    completes it (a token like ">`" after "<tool_call"): llama.cpp throws a C++ exception
    otherwise, which aborts the process. So that text is checked first, and a drawn token
    that would complete the trigger with text the grammar cannot take is swapped for the
    first token of the trigger's own rest."""

    def __init__(self, trigger: str, text: TokenText, vocab: object, gbnf: str) -> None:
        self._text = trigger.encode()
        self._tokens = text
        self._vocab = vocab
        self._gbnf = gbnf
        self._recent: deque[tuple[int, bytes]] = deque()
        self._size = 0  # bytes in _recent

    def _tail(self) -> bytes:
        return b"".join(p for _, p in self._recent)

    def pending(self) -> int:
        """How many bytes at the end of the reply are the start of the trigger."""
        tail = self._tail()
        for n in range(min(len(self._text) - 1, len(tail)), 0, -1):
            if tail.endswith(self._text[:n]):
                return n
        return 0

    def safe(self, token: int) -> int:
        """`token`, unless it would complete the trigger with text the grammar cannot
        take after it: then the first token of the rest of the trigger."""
        tail = self._tail()
        text = tail + self._tokens.piece(token)
        at = text.find(self._text)
        if at < 0 or self._fits(text[at:]):
            return token
        rest = self._text[self.pending() :].decode("utf-8", "replace")
        return self._tokens.tokenize(rest)[0]

    def _fits(self, text: bytes) -> bool:
        """Whether the grammar can start with `text` (the trigger and what follows it)."""
        try:
            tokens = self._tokens.tokenize(text.decode())
        except UnicodeDecodeError:  # a character split across tokens: not a call's text
            return False
        probe = grammar_sampler(self._vocab, Grammar(self._gbnf))
        try:
            for token in tokens:
                if not _allows(probe, token):
                    return False
                llama.llama_sampler_accept(probe, token)
            return True
        finally:
            llama.llama_sampler_free(probe)

    def push(self, token: int) -> list[int] | None:
        """Notes a sampled token; once the trigger has appeared, the recent tokens that
        hold it (the last one included), for the grammar to be given."""
        piece = self._tokens.piece(token)
        self._recent.append((token, piece))
        self._size += len(piece)
        # A trigger that ends in this piece starts at most len-1 bytes before it.
        while len(self._recent) > 1:
            oldest = len(self._recent[0][1])
            if self._size - len(piece) - oldest < len(self._text) - 1:
                break
            self._recent.popleft()
            self._size -= oldest
        tail = self._tail()
        at = tail.find(self._text)
        if at < 0:
            return None
        held = [t for t, _ in self._recent]
        self._recent.clear()
        self._size = 0
        if not self._fits(tail[at:]):
            # Only a token holding the whole trigger and more gets here (`safe` sees to
            # the rest): the reply goes on unconstrained rather than abort the process.
            log.warning("a lazy grammar could not start from %s; it stays off", Content(tail[at:]))
            return None
        return held


class Sampler:
    """A llama.cpp sampler chain; `sample` picks a token and records it (for penalties).

    A grammar is kept beside the chain, not in it: checking every token of the
    vocabulary against a grammar costs more than a small model's whole decode step. As
    llama.cpp's own sampler does, a token is drawn without it first and kept if the
    grammar allows it; only otherwise is the grammar applied to the full row and the
    token drawn again from what it allows."""

    def __init__(
        self,
        params: SamplingParams,
        n_vocab: int,
        vocab: object = None,
        grammar: Grammar | None = None,
        text: TokenText | None = None,
    ) -> None:
        """A lazy grammar (one with a trigger) needs the vocabulary's `text`."""
        chain_params = llama.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self._n_vocab = n_vocab
        self._grammar = grammar_sampler(vocab, grammar) if grammar is not None else None
        self._trigger: _Trigger | None = None
        if grammar is not None and grammar.trigger is not None:
            if text is None:
                raise ValueError("a lazy grammar needs the tokens' text")
            self._trigger = _Trigger(grammar.trigger, text, vocab, grammar.gbnf)
        self._chain = llama.llama_sampler_chain_init(chain_params)
        add = lambda s: llama.llama_sampler_chain_add(self._chain, s)  # noqa: E731
        if params.penalised:
            add(
                llama.llama_sampler_init_penalties(
                    n_vocab,
                    params.repeat_last_n,
                    params.repetition_penalty,
                    params.frequency_penalty,
                    params.presence_penalty,
                )
            )
        if params.logit_bias:
            biases = (llama.llama_logit_bias * len(params.logit_bias))()
            for slot, (token, bias) in zip(biases, params.logit_bias.items(), strict=True):
                slot.token = token
                slot.bias = bias
            add(llama.llama_sampler_init_logit_bias(n_vocab, len(params.logit_bias), biases))
        if params.greedy:
            add(llama.llama_sampler_init_greedy())
            return
        if params.top_k > 0:
            add(llama.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            add(llama.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            add(llama.llama_sampler_init_min_p(params.min_p, 1))
        add(llama.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        add(llama.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def sample(self, ctx: object, idx: int) -> int:
        if self._grammar is None:
            return int(llama.llama_sampler_sample(self._chain, ctx, idx))
        if self._trigger is not None and not self._trigger.pending():
            # The grammar constrains nothing until its trigger: the chain alone draws.
            token = int(llama.llama_sampler_sample(self._chain, ctx, idx))
            self._watch(token)
            return token
        ptr = llama.llama_get_logits_ith(ctx, idx)
        return self.pick(np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)))

    def pick(self, logits: np.ndarray) -> int:
        """A token from one row of logits that the grammar allows (at a trigger's start,
        one the grammar can go on from), recorded."""
        if self._trigger is not None:
            token = self._trigger.safe(self.draw(logits))
            self._watch(token)
        else:
            token = self.draw(logits)
            if not _allows(self._grammar, token):
                token = self.draw(logits, constrained=True)
            llama.llama_sampler_accept(self._grammar, token)
        llama.llama_sampler_accept(self._chain, token)
        return token

    def draw(self, logits: np.ndarray, constrained: bool = False) -> int:
        """A token from one row of logits (with `constrained`, from those the grammar
        allows), recorded nowhere: `accept` does that."""
        data = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
        data["id"] = np.arange(self._n_vocab, dtype=np.int32)
        data["logit"] = logits
        data["p"] = 0.0
        candidates = _candidates(data)
        if constrained:
            llama.llama_sampler_apply(self._grammar, ctypes.byref(candidates))
        llama.llama_sampler_apply(self._chain, ctypes.byref(candidates))
        return int(candidates.data[candidates.selected].id)

    def allows(self, token: int) -> bool:
        """Whether the grammar (if any, and once switched on) allows `token` next."""
        return self._grammar is None or _allows(self._grammar, token)

    def _watch(self, token: int) -> None:
        assert self._trigger is not None
        held = self._trigger.push(token)
        if held is not None:
            self._trigger = None
            for t in held:
                llama.llama_sampler_accept(self._grammar, t)

    def accept(self, token: int) -> None:
        if self._trigger is not None:
            self._watch(token)
        elif self._grammar is not None:
            llama.llama_sampler_accept(self._grammar, token)
        llama.llama_sampler_accept(self._chain, token)

    def close(self) -> None:
        if self._grammar:
            llama.llama_sampler_free(self._grammar)
            self._grammar = None
        if self._chain:
            llama.llama_sampler_free(self._chain)
            self._chain = None


def _candidates(data: np.ndarray) -> object:
    return llama.llama_token_data_array(
        data=data.ctypes.data_as(ctypes.POINTER(llama.llama_token_data)),
        size=len(data),
        selected=-1,
        sorted=False,
    )
