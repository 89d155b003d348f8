"""The per-sequence sampler: each request's own random stream, and the grammar check."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hearth.chat.tools import CALL_OPEN
from hearth.core.config import bundled_model_path
from hearth.core.logtext import quote_prompts
from hearth.engine.llama_cpp import sampling
from hearth.engine.llama_cpp.model import LlamaModel
from hearth.engine.llama_cpp.sampling import (
    Bias,
    Sampler,
    TokenText,
    _Trigger,
    needs_sampler,
)
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


def test_greedy_needs_no_sampler_unless_it_draws_or_has_state() -> None:
    assert not needs_sampler(SamplingParams(temperature=0.0))
    assert not needs_sampler(SamplingParams(temperature=0.0, logit_bias={1: 5.0}))
    assert needs_sampler(SamplingParams(temperature=0.7))
    assert needs_sampler(SamplingParams(temperature=0.0, repetition_penalty=1.3))


def test_a_bias_picks_what_llama_cpps_greedy_chain_picks() -> None:
    """The argmax over the biased row is the token a logit_bias + greedy chain
    draws, for bans, boosts and ids past the vocabulary, and the row is left as it was."""
    rng = np.random.default_rng(3)
    for case in range(20):
        row = rng.normal(size=VOCAB).astype(np.float32)
        top = int(row.argmax())
        biases = [
            {top: -100.0},
            {top: -100.0, int(np.argsort(row)[-2]): -100.0},
            {case: 3.0, top: -0.5},
            {case: 100.0, VOCAB + 5: 100.0},
        ]
        for logit_bias in biases:
            chain = Sampler(SamplingParams(temperature=0.0, logit_bias=logit_bias), VOCAB)
            bias = Bias.of(logit_bias, VOCAB)
            assert bias is not None
            before = row.copy()
            assert bias.argmax(row) == chain.draw(row)
            assert np.array_equal(row, before)
    assert Bias.of({VOCAB: 5.0, -1: 1.0}, VOCAB) is None


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaModel]:
    m = LlamaModel(bundled_model_path())
    yield m
    m.close()


def text_of(model: LlamaModel) -> TokenText:
    return TokenText(
        piece=lambda token: model.piece(token, special=True),
        tokenize=lambda text: model.tokenize(text, **PLAIN),
    )


CALL = 'root ::= "<tool_call>" "\\n"? "{" [a-z]+ "}"'


def test_the_trigger_is_found_across_tokens_and_only_a_few_tokens_are_kept(
    model: LlamaModel,
) -> None:
    """A long reply costs the trigger watch the same at every token: it keeps only the
    tokens whose text could still hold the start of the trigger."""
    trigger = _Trigger(CALL_OPEN, text_of(model), model.vocab, CALL)
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


def lazy(model: LlamaModel, **params: object) -> Sampler:
    sampling = SamplingParams(**{"temperature": 0.0, **params})  # type: ignore[arg-type]
    grammar = Grammar(CALL, trigger=CALL_OPEN)
    return Sampler(sampling, model.n_vocab, model.vocab, grammar, text_of(model))


def test_a_lazy_grammar_switches_on_at_its_trigger_after_a_long_reply(model: LlamaModel) -> None:
    sampler = lazy(model)
    try:
        brace = model.tokenize("{", **PLAIN)[0]
        quote = model.tokenize('"', **PLAIN)[0]
        for token in model.tokenize("A long free reply, with < and > in it. " * 100, **PLAIN):
            sampler.accept(token)
        assert sampler.allows(quote)  # still free: nothing is constrained yet
        for token in model.tokenize(f"Now {CALL_OPEN}", **PLAIN):
            sampler.accept(token)
        assert sampler.allows(brace)
        assert not sampler.allows(quote)
    finally:
        sampler.close()


# Run in a child process: before the fix, llama.cpp threw a C++ exception out of
# llama_sampler_accept, which aborts the whole process (the server with it).
_COMPLETES_WITH_JUNK = """
import sys
from hearth.chat.tools import CALL_OPEN
from tests.engine.test_sampling import PLAIN, lazy
from hearth.core.config import bundled_model_path
from hearth.engine.llama_cpp.model import LlamaModel
import numpy as np

model = LlamaModel(bundled_model_path())
junk = model.tokenize(">`", **PLAIN)
assert len(junk) == 1, junk  # one token that closes the tag and writes on past it
sampler = lazy(model, logit_bias={junk[0]: 100.0})
for token in model.tokenize("Here: " + CALL_OPEN[:-1], **PLAIN):
    sampler.accept(token)
picked = sampler.pick(np.zeros(model.n_vocab, dtype=np.float32))
assert picked != junk[0], picked
assert model.piece(picked, special=True) == b">", model.piece(picked, special=True)
brace = model.tokenize("{", **PLAIN)[0]
assert sampler.allows(brace) and not sampler.allows(junk[0])
sampler.close()
print("ok")
"""


def test_a_token_past_the_trigger_that_the_grammar_cannot_take_is_never_given_to_it() -> None:
    """The model writes "<tool_call" and then ">`" as one token: what follows the trigger
    in it does not fit the call grammar. The token is swapped for ">" alone, and the
    grammar takes over from the trigger."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _COMPLETES_WITH_JUNK],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_the_text_a_lazy_grammar_could_not_start_from_is_logged_only_when_asked(
    model: LlamaModel, caplog: pytest.LogCaptureFixture
) -> None:
    """The trigger "Onc" is completed by the token "Once", whose text the grammar (which
    wants "Oncx") cannot take: the grammar stays off, with a warning that quotes the
    reply's text only under --log-prompts."""
    tokens = model.tokenize("Once", **PLAIN)
    assert len(tokens) == 1

    def warning() -> str:
        caplog.clear()
        trigger = _Trigger("Onc", text_of(model), model.vocab, 'root ::= "Oncx"')
        with caplog.at_level(logging.WARNING, logger=sampling.__name__):
            assert trigger.push(tokens[0]) is None
        return caplog.records[-1].getMessage()

    try:
        hidden = warning()
        assert "could not start" in hidden and "Once" not in hidden
        assert "<4 bytes of text; --log-prompts shows it>" in hidden
        quote_prompts(True)
        assert "b'Once'" in warning()
    finally:
        quote_prompts(False)
