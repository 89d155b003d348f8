"""The per-sequence sampler: each request's own random stream, and the grammar check."""

from __future__ import annotations

import numpy as np

from hearth.engine.llama_cpp.sampling import Sampler, needs_sampler
from hearth.engine.types import SamplingParams

VOCAB = 64
# A spread-out distribution, so that different random draws pick different tokens.
LOGITS = np.linspace(0.0, 2.0, VOCAB, dtype=np.float32)


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
