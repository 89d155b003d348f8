"""Log-probabilities with real values, as the openai SDK parses them."""

from __future__ import annotations

import math

import openai

from tests.conftest import MODEL

Q = [{"role": "user", "content": "Name a fruit."}]


def test_chat_logprobs_are_real(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=Q, temperature=0, max_tokens=8, logprobs=True, top_logprobs=3
    )
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    entries = choice.logprobs.content
    assert reply.usage is not None
    assert len(entries) == reply.usage.completion_tokens - (choice.finish_reason == "stop")
    assert "".join(e.token for e in entries).startswith(choice.message.content or "")
    for e in entries:
        assert e.logprob <= 0
        assert len(e.top_logprobs) == 3
        # greedy: the chosen token is the most likely one
        assert e.top_logprobs[0].token == e.token
        assert math.isclose(e.top_logprobs[0].logprob, e.logprob, abs_tol=1e-6)
        assert [t.logprob for t in e.top_logprobs] == sorted(
            (t.logprob for t in e.top_logprobs), reverse=True
        )
        assert sum(math.exp(t.logprob) for t in e.top_logprobs) <= 1.0 + 1e-6
        assert bytes(e.bytes or []).decode("utf-8", "replace") == e.token


def test_chat_logprobs_stream_match(client: openai.OpenAI) -> None:
    args = {"model": MODEL, "messages": Q, "temperature": 0, "max_tokens": 8, "logprobs": True}
    full = client.chat.completions.create(**args)  # type: ignore[call-overload]
    streamed = []
    for chunk in client.chat.completions.create(stream=True, **args):  # type: ignore[call-overload]
        if chunk.choices and chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
            streamed.extend(chunk.choices[0].logprobs.content)
    assert [(e.token, round(e.logprob, 5)) for e in streamed] == [
        (e.token, round(e.logprob, 5))
        for e in full.choices[0].logprobs.content  # type: ignore[union-attr]
    ]
    assert all(e.top_logprobs == [] for e in streamed)


def test_no_logprobs_unless_asked(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=Q, max_tokens=3)
    assert reply.choices[0].logprobs is None


def test_top_logprobs_needs_logprobs(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model=MODEL, messages=Q, max_tokens=3, top_logprobs=2)
    except openai.BadRequestError as exc:
        assert exc.body["param"] == "top_logprobs"  # type: ignore[index]
    else:
        raise AssertionError("expected a 400")


def test_completion_logprobs(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=MODEL, prompt="One, two, three,", max_tokens=5, temperature=0, logprobs=2
    )
    lp = reply.choices[0].logprobs
    assert lp is not None and lp.tokens and lp.token_logprobs and lp.top_logprobs
    assert "".join(lp.tokens).startswith(reply.choices[0].text)
    assert lp.text_offset is not None and lp.text_offset[0] == 0
    assert all(v <= 0 for v in lp.token_logprobs)
    for token, top in zip(lp.tokens, lp.top_logprobs, strict=True):
        assert len(top) == 2 and token in top
    streamed = []
    for chunk in client.completions.create(
        model=MODEL,
        prompt="One, two, three,",
        max_tokens=5,
        temperature=0,
        logprobs=0,
        stream=True,
    ):
        if chunk.choices and chunk.choices[0].logprobs:
            streamed.extend(chunk.choices[0].logprobs.tokens or [])
    assert streamed == lp.tokens
