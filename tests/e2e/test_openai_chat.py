"""The openai SDK against a real server and the real bundled model."""

from __future__ import annotations

import openai

from tests.conftest import MODEL

HELLO = [{"role": "user", "content": "Write one sentence about the sea."}]


def greedy(client: openai.OpenAI, **kw: object) -> openai.types.chat.ChatCompletion:
    args: dict[str, object] = {
        "model": MODEL,
        "messages": HELLO,
        "temperature": 0,
        "max_tokens": 24,
    }
    args.update(kw)
    return client.chat.completions.create(**args)  # type: ignore[call-overload]


def test_list_and_retrieve_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL]
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL
    assert model.object == "model"
    assert model.owned_by == "hearth"


def test_chat_non_stream(client: openai.OpenAI) -> None:
    reply = greedy(client)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in {"stop", "length"}
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_matches_non_stream(client: openai.OpenAI) -> None:
    full = greedy(client).choices[0].message.content
    stream = greedy(client, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == full
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}
    assert all(c.usage is None for c in chunks)


def test_include_usage_adds_a_final_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(greedy(client, stream=True, stream_options={"include_usage": True}))
    *body, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert all(c.usage is None for c in body)
    n_text_chunks = sum(1 for c in body if c.choices and c.choices[0].delta.content)
    assert last.usage.completion_tokens >= n_text_chunks
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_same_seed_same_text(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model=MODEL, messages=HELLO, temperature=0.8, seed=seed, max_tokens=30
        )
        return reply.choices[0].message.content or ""

    first, second = sample(1234), sample(1234)
    assert first == second
    others = {sample(s) for s in range(1, 6)}
    assert len(others) > 1, "different seeds should not all give the same text"


def test_max_tokens_gives_length(client: openai.OpenAI) -> None:
    reply = greedy(client, max_tokens=5)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    reply = greedy(client, max_tokens=None, max_completion_tokens=3)
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_stop_string_is_honoured_and_not_returned(client: openai.OpenAI) -> None:
    full = greedy(client, max_tokens=40).choices[0].message.content or ""
    words = full.split()
    assert len(words) >= 4, full
    stop = words[2]
    reply = greedy(client, max_tokens=40, stop=[stop, "zzqzz"])
    text = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop"
    assert stop not in text
    assert text == full[: full.index(stop)]


def test_stop_split_across_tokens(client: openai.OpenAI) -> None:
    pieces = [
        c.choices[0].delta.content
        for c in greedy(client, max_tokens=40, stream=True)
        if c.choices and c.choices[0].delta.content
    ]
    full = "".join(pieces)
    # a stop string made of the end of one streamed piece and the start of the next
    i = next(
        k for k in range(1, len(pieces) - 1) if len(pieces[k]) >= 2 and len(pieces[k + 1]) >= 2
    )
    stop = pieces[i][-2:] + pieces[i + 1][:2]
    cut = full.index(stop)
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in greedy(client, max_tokens=40, stream=True, stop=stop)
        if c.choices
    )
    assert streamed == full[:cut]
    assert stop not in streamed


def test_content_as_text_parts_and_system_role(client: openai.OpenAI) -> None:
    as_parts = greedy(
        client,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]},
        ],
    )
    as_string = greedy(
        client,
        messages=[
            {"role": "developer", "content": "You are terse."},
            {"role": "user", "content": "Name a colour."},
        ],
    )
    assert as_parts.choices[0].message.content == as_string.choices[0].message.content


def test_n_choices(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=HELLO, n=3, temperature=1.0, seed=7, max_tokens=12
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) > 1
    single = client.chat.completions.create(
        model=MODEL, messages=HELLO, temperature=1.0, seed=7, max_tokens=12
    )
    assert reply.usage is not None and single.usage is not None
    assert reply.usage.prompt_tokens == single.usage.prompt_tokens  # the prompt counts once
    assert 3 <= reply.usage.completion_tokens <= 36


def test_n_choices_stream(client: openai.OpenAI) -> None:
    texts = {0: "", 1: ""}
    finished = set()
    for chunk in client.chat.completions.create(
        model=MODEL, messages=HELLO, n=2, seed=3, max_tokens=10, stream=True
    ):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1}
    assert all(texts.values())
