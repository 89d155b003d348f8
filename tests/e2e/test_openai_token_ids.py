"""Token-id prompts and inputs (`[12, 34]`, `[[12, 34], [56]]`) on /v1/completions and
/v1/embeddings, through the real client and model.

The ids come from llama-cpp-python's own tokenizer of the same GGUF file, not from the
server, so the server's tokenizer is checked against an outside one as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import openai
import pytest

from tests.conftest import MODEL, LiveServer
from tests.prometheus import delta, scrape


class Tokenizer:
    def __init__(self, model_path: Path) -> None:
        self.llm = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, verbose=False)
        self.n_vocab = self.llm.n_vocab()

    def prompt(self, text: str) -> list[int]:
        """As the server tokenizes a completion prompt: special tokens parsed, the
        model's BOS if it wants one."""
        return self.llm.tokenize(text.encode(), add_bos=True, special=True)

    def embedding(self, text: str) -> list[int]:
        """As the server tokenizes an embedding input: special tokens as plain text."""
        return self.llm.tokenize(text.encode(), add_bos=True, special=False)

    def bare(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=False)


@pytest.fixture(scope="module")
def tok(model_path: Path) -> Iterator[Tokenizer]:
    tokenizer = Tokenizer(model_path)
    yield tokenizer
    tokenizer.llm.close()


def vectors(result: Any) -> list[np.ndarray]:
    return [np.array(d.embedding) for d in result.data]


# ---- embeddings ----------------------------------------------------------------------


def test_embedding_of_ids_equals_embedding_of_their_text(
    client: openai.OpenAI, tok: Tokenizer
) -> None:
    text = "The quick brown fox jumps over the lazy dog"
    ids = tok.embedding(text)
    by_text = client.embeddings.create(model=MODEL, input=text)
    by_ids = client.embeddings.create(model=MODEL, input=ids)
    (a,), (b,) = vectors(by_text), vectors(by_ids)
    np.testing.assert_allclose(b, a, atol=1e-5)
    assert by_ids.usage.prompt_tokens == by_ids.usage.total_tokens == len(ids)
    assert by_text.usage.prompt_tokens == len(ids)


def test_embedding_batch_of_token_arrays(client: openai.OpenAI, tok: Tokenizer) -> None:
    texts = ["a cat sat on the mat", "quantum chromodynamics", "a cat sat on the mat"]
    ids = [tok.embedding(t) for t in texts]
    by_text = vectors(client.embeddings.create(model=MODEL, input=texts))
    result = client.embeddings.create(model=MODEL, input=ids, encoding_format="float")
    by_ids = vectors(result)
    assert [d.index for d in result.data] == [0, 1, 2]
    for a, b in zip(by_text, by_ids, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    assert float(by_ids[0] @ by_ids[1]) < 0.99  # different inputs, different vectors
    assert result.usage.prompt_tokens == result.usage.total_tokens == sum(map(len, ids))


def test_embedding_takes_ids_as_given(client: openai.OpenAI, tok: Tokenizer) -> None:
    # "hel" + "lo" is not how "hello" tokenizes: the ids must be embedded as sent, not
    # turned into text and tokenized again.
    split = tok.bare("hel") + tok.bare("lo")
    assert split != tok.bare("hello")
    result = client.embeddings.create(model=MODEL, input=[split, tok.bare("hello")])
    a, b = vectors(result)
    assert not np.allclose(a, b, atol=1e-5)
    assert result.usage.prompt_tokens == len(split) + len(tok.bare("hello"))


def test_the_input_limit_counts_inputs_not_ids(client: openai.OpenAI, tok: Tokenizer) -> None:
    # One array of 3000 ids is one input (within the model's 4096), not 3000 of them.
    result = client.embeddings.create(model=MODEL, input=tok.bare(" word") * 3000)
    assert len(result.data) == 1
    assert result.usage.prompt_tokens == 3000
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=MODEL, input=[[1]] * 2049)
    assert error_of(info.value)["param"] == "input"


def test_embedding_ids_over_the_limit(client: openai.OpenAI, tok: Tokenizer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=MODEL, input=tok.bare(" word") * 5000)
    assert error_of(info.value)["code"] == "context_length_exceeded"


# ---- completions ---------------------------------------------------------------------

PROMPTS = ["The capital of France is", "Once upon a time, in a small village,"]


def complete(client: openai.OpenAI, prompt: Any, **kw: Any) -> Any:
    args: dict[str, Any] = {"model": MODEL, "max_tokens": 12, "temperature": 0}
    args.update(kw)
    return client.completions.create(prompt=prompt, **args)


def test_token_prompt_completes_as_its_text(client: openai.OpenAI, tok: Tokenizer) -> None:
    for text in PROMPTS:
        ids = tok.prompt(text)
        by_text = complete(client, text, logprobs=2)
        by_ids = complete(client, ids, logprobs=2)
        assert by_ids.choices[0].text == by_text.choices[0].text != ""
        assert by_ids.choices[0].finish_reason == by_text.choices[0].finish_reason
        assert by_ids.choices[0].logprobs.tokens == by_text.choices[0].logprobs.tokens
        assert by_ids.usage.prompt_tokens == by_text.usage.prompt_tokens == len(ids)
        assert by_ids.usage.completion_tokens == by_text.usage.completion_tokens


def test_token_prompt_with_stop_string(client: openai.OpenAI, tok: Tokenizer) -> None:
    text = PROMPTS[1]
    full = complete(client, text, max_tokens=30).choices[0].text
    stop = full.strip().split()[2]  # a word the reply does reach
    by_text = complete(client, text, max_tokens=30, stop=[stop])
    by_ids = complete(client, tok.prompt(text), max_tokens=30, stop=[stop])
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert stop not in by_ids.choices[0].text
    assert by_ids.choices[0].finish_reason == "stop"


def test_batch_of_token_prompts(client: openai.OpenAI, tok: Tokenizer) -> None:
    ids = [tok.prompt(t) for t in PROMPTS]
    singles = [complete(client, t) for t in PROMPTS]
    texts = [s.choices[0].text for s in singles]
    batch = complete(client, ids, n=2)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    assert [c.text for c in batch.choices] == [texts[0], texts[0], texts[1], texts[1]]
    # Each prompt counts once, whatever n is; every choice's tokens count.
    assert batch.usage.prompt_tokens == len(ids[0]) + len(ids[1])
    assert batch.usage.completion_tokens == 2 * sum(s.usage.completion_tokens for s in singles)


def test_token_prompt_echoes_its_text(client: openai.OpenAI, tok: Tokenizer) -> None:
    # Ids split where the tokenizer would not split: the echo is their text all the same.
    split = tok.bare("Hel") + tok.bare("lo, my name is")
    assert split != tok.bare("Hello, my name is")
    plain = complete(client, split)
    echoed = complete(client, split, echo=True)
    assert echoed.choices[0].text == "Hello, my name is" + plain.choices[0].text
    assert echoed.usage.prompt_tokens == plain.usage.prompt_tokens == len(split)
    chunks = list(complete(client, split, echo=True, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == echoed.choices[0].text
    # Special tokens are echoed as their text, as OpenAI echoes <|endoftext|>.
    special = tok.prompt("<|im_start|>user")
    assert (
        complete(client, special, echo=True, max_tokens=1)
        .choices[0]
        .text.startswith("<|im_start|>user")
    )


def test_token_prompt_usage_when_streamed(client: openai.OpenAI, tok: Tokenizer) -> None:
    ids = tok.prompt(PROMPTS[0])
    chunks = list(complete(client, ids, stream=True, stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == len(ids)


def test_token_prompt_in_the_metrics(
    client: openai.OpenAI, live_server: LiveServer, tok: Tokenizer
) -> None:
    ids = tok.prompt(PROMPTS[1])
    before = scrape(live_server.url)
    reply = complete(client, ids, max_tokens=3)
    after = scrape(live_server.url)
    assert delta(before, after, "hearth_prompt_tokens_total", model=MODEL) == len(ids)
    assert delta(before, after, "hearth_generation_tokens_total", model=MODEL) == (
        reply.usage.completion_tokens
    )


def test_token_prompt_reuses_the_prefix_cache(client: openai.OpenAI, tok: Tokenizer) -> None:
    ids = tok.prompt("A prompt sent twice as token ids, to see its cache used: " * 8)
    complete(client, ids, max_tokens=2)
    again = complete(client, ids, max_tokens=2)
    details = again.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens >= len(ids) - 1


def test_token_prompt_over_the_context(client: openai.OpenAI, tok: Tokenizer) -> None:
    long = tok.bare(" word") * 5000
    with pytest.raises(openai.BadRequestError) as info:
        complete(client, long, max_tokens=None)
    assert error_of(info.value)["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as info:
        complete(client, tok.bare(" word") * 4000, max_tokens=200)
    body = error_of(info.value)
    assert body["code"] == "context_length_exceeded"
    assert "4200" in str(body["message"])


# ---- bad token inputs ----------------------------------------------------------------


def error_of(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body
    assert isinstance(body, dict)
    return body


VOCAB = "VOCAB"  # stands for the model's vocabulary size: the first id past its end

BAD: list[tuple[Any, str]] = [
    ([], ""),
    ([[]], "[0]"),
    ([[1, 2], []], "[1]"),
    ([1, "a"], "[1]"),
    (["a", 1], "[1]"),
    (["a", [1, 2]], "[1]"),
    ([[1, 2], "a"], "[1]"),
    ([[1, 2], 3], "[1]"),
    ([1, 2.5], "[1]"),
    ([2.0], "[0]"),
    ([True, 1], "[0]"),
    ([1, False], "[1]"),
    ([1, None], "[1]"),
    ([[1, True]], "[0][1]"),
    ([[1, 2.0]], "[0][1]"),
    ([[1], [2, "x"]], "[1][1]"),
    ([[1], [[2]]], "[1][0]"),
    ([-1], "[0]"),
    ([1, 2, VOCAB], "[2]"),
    ([[1, 2], [3, VOCAB]], "[1][1]"),
    ([[5, -3]], "[0][1]"),
    ([[1], [2**40]], "[1][0]"),
]


def _fill(value: Any, n_vocab: int) -> Any:
    if isinstance(value, list):
        return [_fill(v, n_vocab) for v in value]
    return n_vocab if value == VOCAB else value


@pytest.mark.parametrize(("value", "where"), BAD)
@pytest.mark.parametrize("route", ["embeddings", "completions"])
def test_bad_token_input_is_a_400_naming_it(
    client: openai.OpenAI, tok: Tokenizer, route: str, value: Any, where: str
) -> None:
    value = _fill(value, tok.n_vocab)
    with pytest.raises(openai.BadRequestError) as info:
        if route == "embeddings":
            client.embeddings.create(model=MODEL, input=value)
        else:
            complete(client, value, max_tokens=2)
    field = "input" if route == "embeddings" else "prompt"
    error = error_of(info.value)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field + where
    assert field in str(error["message"])


def test_out_of_vocabulary_message_names_the_range(client: openai.OpenAI, tok: Tokenizer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=MODEL, input=[[1, 2], [tok.n_vocab + 7]])
    body = error_of(info.value)
    assert body["param"] == "input[1][0]"
    assert str(tok.n_vocab + 7) in str(body["message"])
    assert str(tok.n_vocab - 1) in str(body["message"])
