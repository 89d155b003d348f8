"""The per-sequence sampler: each request's own random stream, and the grammar check."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from hearth.chat.tools import CALL_OPEN
from hearth.core.config import bundled_model_path
from hearth.engine.llama_cpp.model import LlamaModel
from hearth.engine.llama_cpp.sampling import Sampler, _Trigger, needs_sampler
from hearth.engine.types import Grammar, SamplingParams

VOCAB = 64
# A spread-out distribution, so that different random draws pick different tokens.
LOGITS = np.linspace(0.0, 2.0, VOCAB, dtype=np.float32)
PLAIN = {"add_special": False, "parse_special": False}


def picks(sampler: Sampler, count: int, between: Sampler | None = None) -> list[int]:
    out = []
    for _ in range(count):
        out.append(sampler.draw(LOGITS))
        sampler.accept(out[-1])
        if between is not None:  # a neighbour in the same batch draws in between
            between.accept(between.draw(LOGITS))
    return out


def test_a_seed_draws_the_same_tokens_whatever_its_neighbours_draw() -> None:
    """Each sequence has its own random stream, seeded by its request: another
    sequence sampling in the same steps takes nothing from it."""
    seeded = SamplingParams(temperature=1.0, seed=42)
    alone = picks(Sampler(seeded, VOCAB), 40)
    neighbour = Sampler(SamplingParams(temperature=1.0, seed=7), VOCAB)
    beside = picks(Sampler(seeded, VOCAB), 40, between=neighbour)
    assert alone == beside
    assert len(set(alone)) > 10  # really sampled, not one token over and over
    other_seed = picks(Sampler(SamplingParams(temperature=1.0, seed=43), VOCAB), 40)
    assert other_seed != alone


def test_greedy_needs_no_sampler_unless_something_changes_the_row() -> None:
    assert not needs_sampler(SamplingParams(temperature=0.0))
    assert needs_sampler(SamplingParams(temperature=0.7))
    assert needs_sampler(SamplingParams(temperature=0.0, logit_bias={1: 5.0}))
    assert needs_sampler(SamplingParams(temperature=0.0, repetition_penalty=1.3))


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaModel]:
    m = LlamaModel(bundled_model_path())
    yield m
    m.close()


def piece_of(model: LlamaModel) -> Callable[[int], bytes]:
    return lambda token: model.piece(token, special=True)


def test_the_trigger_is_found_across_tokens_and_only_a_few_tokens_are_kept(
    model: LlamaModel,
) -> None:
    """A long reply costs the trigger watch the same at every token: it keeps only the
    tokens whose text could still hold the start of the trigger."""
    trigger = _Trigger(CALL_OPEN, piece_of(model))
    prose = model.tokenize("Once upon a time, <tool> a keeper lit the lamp. " * 200, **PLAIN)
    assert len(prose) > 2000
    for token in prose:
        assert trigger.push(token) is None
        assert sum(len(p) for _, p in trigger._recent) < 2 * len(CALL_OPEN) + 16
    opening = model.tokenize(f"Sure.{CALL_OPEN}", **PLAIN)
    found = [trigger.push(t) for t in opening]
    assert found[:-1] == [None] * (len(opening) - 1)
    held = found[-1]
    assert held is not None
    assert CALL_OPEN.encode() in b"".join(model.piece(t, special=True) for t in held)


def test_a_lazy_grammar_switches_on_at_its_trigger_after_a_long_reply(model: LlamaModel) -> None:
    grammar = Grammar('root ::= "<tool_call>" "{" [a-z]+ "}"', trigger=CALL_OPEN)
    sampler = Sampler(
        SamplingParams(temperature=0.0), model.n_vocab, model.vocab, grammar, piece_of(model)
    )
    try:
        brace = model.tokenize("{", **PLAIN)[0]
        quote = model.tokenize('"', **PLAIN)[0]
        for token in model.tokenize("A long free reply, with < and > in it. " * 100, **PLAIN):
            sampler.accept(token)
        assert sampler._allowed(quote)  # still free: nothing is constrained yet
        for token in model.tokenize(f"Now {CALL_OPEN}", **PLAIN):
            sampler.accept(token)
        assert sampler._allowed(brace)
        assert not sampler._allowed(quote)
    finally:
        sampler.close()
