"""Token log-probabilities in the Responses API (`include` + `top_logprobs`), with the
real `openai` SDK and model: in the reply, its stream, its replay and its retrieval."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest

from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(240)

LOGPROBS = ["message.output_text.logprobs"]


def check_entries(entries: list[Any], text: str, k: int) -> None:
    """Real values: one entry per token, their bytes spell the text, each sampled token is
    (greedy) the most likely of its k alternatives, sorted by likelihood."""
    assert entries
    assert b"".join(bytes(e.bytes) for e in entries).decode() == text
    for e in entries:
        assert e.logprob <= 0 and math.isfinite(e.logprob)
        assert len(e.top_logprobs) == k
        alts = [t.logprob for t in e.top_logprobs]
        assert alts == sorted(alts, reverse=True)
        if k:
            assert e.top_logprobs[0].token == e.token
            assert e.top_logprobs[0].logprob == pytest.approx(e.logprob)


def test_included_logprobs_are_in_the_reply_and_kept(stored_client: openai.OpenAI) -> None:
    client = stored_client
    r = client.responses.create(
        model=MODEL,
        input="Name a colour.",
        max_output_tokens=12,
        temperature=0,
        include=LOGPROBS,  # type: ignore[list-item]
        top_logprobs=3,
    )
    part = r.output[0].content[0]  # type: ignore[union-attr]
    assert r.top_logprobs == 3
    assert part.type == "output_text" and part.logprobs is not None
    check_entries(part.logprobs, r.output_text, 3)
    again = client.responses.retrieve(r.id).output[0].content[0]  # type: ignore[union-attr]
    assert again.logprobs == part.logprobs


def test_logprobs_only_when_included(stored_client: openai.OpenAI) -> None:
    """As OpenAI does: `top_logprobs` alone adds nothing; `include` alone gives each
    token's own logprob with no alternatives."""
    client = stored_client
    common: dict[str, Any] = {
        "model": MODEL,
        "input": "Say yes.",
        "max_output_tokens": 6,
        "temperature": 0,
    }
    bare = client.responses.create(**common, top_logprobs=5)
    assert bare.output[0].content[0].logprobs == []  # type: ignore[union-attr]
    own = client.responses.create(**common, include=LOGPROBS)
    assert own.top_logprobs == 0
    check_entries(own.output[0].content[0].logprobs, own.output_text, 0)  # type: ignore[union-attr]


def test_streamed_logprobs_match_the_final_text_and_the_replay(
    stored_client: openai.OpenAI,
) -> None:
    client = stored_client
    stream = client.responses.create(
        model=MODEL,
        input="Count from one to five.",
        max_output_tokens=20,
        temperature=0,
        include=LOGPROBS,  # type: ignore[list-item]
        top_logprobs=2,
        stream=True,
    )
    events = list(stream)
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    streamed = [lp for e in deltas for lp in e.logprobs]
    done = next(e for e in events if e.type == "response.output_text.done")
    final = events[-1].response  # type: ignore[union-attr]
    check_entries(done.logprobs, final.output_text, 2)  # type: ignore[arg-type]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in done.logprobs]
    # Each delta carries the logprobs of the tokens that made its text.
    for e in deltas:
        assert "".join(lp.token for lp in e.logprobs) == e.delta
    # The stored stream replays the same text events, logprobs and all.
    text_events = {"response.output_text.delta", "response.output_text.done"}
    replay = list(client.responses.retrieve(final.id, stream=True))
    assert [e.model_dump() for e in replay if e.type in text_events] == [
        e.model_dump() for e in events if e.type in text_events
    ]
