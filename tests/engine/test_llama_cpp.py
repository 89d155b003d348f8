"""The llama.cpp backend and its scheduler, driven directly with the real model."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from hearth.core.errors import (
    ContextLengthExceeded,
    EngineError,
    InvalidRequest,
    Overloaded,
    QueueTimeout,
)
from hearth.engine.base import Generation
from hearth.engine.llama_cpp import scheduler
from hearth.engine.llama_cpp.backend import LlamaCppBackend
from hearth.engine.llama_cpp.scheduler import SchedulerConfig
from hearth.engine.types import (
    ChatMessage,
    Finished,
    GenerationRequest,
    SamplingParams,
    TokenEvent,
    TokenLogprob,
)


def config(**kw: object) -> SchedulerConfig:
    base: dict[str, object] = {
        "ctx_size": 4096,
        "parallel": 4,
        "batch_size": 512,
        "host_cache_bytes": 256 << 20,
        "threads": 2,
        "max_queue": 16,
        "queue_timeout": 60.0,
    }
    base.update(kw)
    return SchedulerConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
async def backend(model_path: Path) -> AsyncIterator[LlamaCppBackend]:
    b = LlamaCppBackend("m", model_path, config())
    yield b
    await b.close()


def chat(text: str, max_tokens: int = 24, **sampling: object) -> GenerationRequest:
    params = SamplingParams(**{"temperature": 0.0, **sampling})  # type: ignore[arg-type]
    return GenerationRequest(
        model="m",
        messages=(ChatMessage("user", text),),
        sampling=params,
        max_tokens=max_tokens,
    )


async def run(backend: LlamaCppBackend, request: GenerationRequest) -> tuple[str, Finished]:
    return await collect(await backend.start(request))


async def collect(gen: Generation) -> tuple[str, Finished]:
    text = ""
    async for event in gen:
        if isinstance(event, TokenEvent):
            text += event.text
        else:
            return text, event
    raise AssertionError("no Finished event")


# SmolLM2's end tokens banned: a reply that cannot end before max_tokens.
NEVER_END = {0: -100.0, 2: -100.0}

PROMPTS = [
    "Write one sentence about the sea.",
    "Name three fruits.",
    "What is two plus two?",
    "Describe a cat in a few words.",
    "Give me a haiku about autumn.",
    "What colour is the sky?",
]


async def tokens(backend: LlamaCppBackend, request: GenerationRequest) -> list[TokenLogprob]:
    out: list[TokenLogprob] = []
    async for event in await backend.start(request):
        if isinstance(event, TokenEvent):
            out.extend(event.logprobs)
    return out


def first_divergence_is_a_near_tie(a: list[TokenLogprob], b: list[TokenLogprob]) -> str | None:
    """None when `b` follows `a` up to a point where both runs saw the two tokens as
    near-equally likely (within 1 nat, each among the other's top 5); else why not.
    Past that point the runs continue different texts and are not compared."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x.token == y.token:
            continue
        for run, other in ((x, y), (y, x)):
            alt = {t.token: t.logprob for t in run.top}
            if other.token not in alt or run.logprob - alt[other.token] > 1.0:
                return f"token {i}: {x.token!r} vs {y.token!r}, {run.top}"
        return None
    return None  # one ended where the other went on: the end token was the near-tie


async def test_concurrent_requests_agree_with_sequential_ones(backend: LlamaCppBackend) -> None:
    """Six greedy requests in one batch answer what each answers alone. Attention over
    the shared KV cache is not bit-identical across batch compositions (nor are cells
    reused from another request, shared or copied back from host memory), so where the
    two best tokens are nearly tied the runs may part ("1. Grapes" / "1. Bananas"); a
    mixed-up sequence would part at once on a token its own run thought unlikely."""
    reqs = [replace(chat(p), logprobs=5) for p in PROMPTS]
    alone = [await tokens(backend, r) for r in reqs]
    together = await asyncio.gather(*(tokens(backend, r) for r in reqs))
    for a, t in zip(alone, together, strict=True):
        assert a and t
        assert first_divergence_is_a_near_tie(a, t) is None


async def test_prefix_reuse_is_reported_and_changes_nothing(backend: LlamaCppBackend) -> None:
    history = "Remember this list: " + ", ".join(f"item {i}" for i in range(60)) + "."
    first, f1 = await run(backend, chat(history, max_tokens=16))
    second, f2 = await run(backend, chat(history, max_tokens=16))
    assert f1.usage.cached_tokens == 0
    assert f2.usage.cached_tokens == f2.usage.prompt_tokens - 1
    assert first == second


async def test_cancelling_frees_the_slot_at_once(backend: LlamaCppBackend) -> None:
    endless = {"logit_bias": NEVER_END}
    gens = [await backend.start(chat(p, max_tokens=500, **endless)) for p in PROMPTS[:4]]
    for gen in gens:
        async for event in gen:
            assert isinstance(event, TokenEvent)
            break
    assert backend.stats()["running"] == 4
    for gen in gens:
        await gen.aclose()
    # At the scheduler's next step, long before 500 tokens (a step on a loaded machine
    # can take a good part of a second).
    for _ in range(500):
        if backend.stats()["running"] == 0:
            break
        await asyncio.sleep(0.01)
    assert backend.stats()["running"] == 0
    text, _ = await run(backend, chat("Hi", max_tokens=4))
    assert text


async def test_context_length_is_checked_before_admission(backend: LlamaCppBackend) -> None:
    limit = backend.info.context_length
    assert limit == 4096  # the whole cache; SmolLM2 was trained on 8192
    with pytest.raises(ContextLengthExceeded, match="4096"):
        await backend.start(chat("hi", max_tokens=limit))
    with pytest.raises(ContextLengthExceeded):
        await backend.start(chat("word " * 5000, max_tokens=None))  # type: ignore[arg-type]
    assert backend.stats()["running"] == 0


async def test_full_queue_is_refused_at_once(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config(parallel=1, max_queue=1, ctx_size=1024))
    try:
        running = await b.start(chat(PROMPTS[0], max_tokens=400, logit_bias=NEVER_END))
        queued = asyncio.create_task(b.start(chat(PROMPTS[1], max_tokens=4)))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded) as info:
            await b.start(chat(PROMPTS[2], max_tokens=4))
        assert info.value.status == 429 and info.value.retry_after
        await running.aclose()
        text, _ = await collect(await queued)
        assert text
    finally:
        await b.close()


async def test_waiting_too_long_is_a_503(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config(parallel=1, queue_timeout=0.3, ctx_size=1024))
    try:
        running = await b.start(chat(PROMPTS[0], max_tokens=600, logit_bias=NEVER_END))
        with pytest.raises(QueueTimeout) as info:
            await b.start(chat(PROMPTS[1], max_tokens=4))
        assert info.value.status == 503
        await running.aclose()
    finally:
        await b.close()


async def test_empty_messages_render_and_embed_checks(backend: LlamaCppBackend) -> None:
    result = await backend.embed(["hello", "hello there"])
    assert len(result.vectors) == 2 and len(result.vectors[0]) == 576
    assert result.prompt_tokens >= 3


async def test_a_cancelled_embedding_stops_after_the_input_it_is_on(
    backend: LlamaCppBackend,
) -> None:
    await backend.embed(["warm up"])  # creates the embedding context
    embedder = backend._embedder
    assert embedder is not None
    decode = embedder._batch.decode
    decoded = threading.Event()
    calls = 0

    def counted(ctx: object) -> int:
        nonlocal calls
        calls += 1
        decoded.set()
        return decode(ctx)

    embedder._batch.decode = counted  # type: ignore[method-assign]
    inputs = ["the quick brown fox jumps over the lazy dog " * 20] * 200
    task = asyncio.create_task(backend.embed(inputs))
    assert await asyncio.to_thread(decoded.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker thread gives the context back after its current input, not 200 of them.
    assert await asyncio.to_thread(embedder._lock.acquire, True, 30)
    embedder._lock.release()
    assert calls < 20
    assert len((await backend.embed(["hello"])).vectors) == 1


async def test_a_sequence_that_runs_out_of_cells_is_preempted_and_resumes(
    model_path: Path,
) -> None:
    # Two requests of ~230 tokens each in a 256-cell cache: one must wait for the other.
    b = LlamaCppBackend("m", model_path, config(parallel=2, ctx_size=256))
    try:
        requests = [chat(p, max_tokens=200, logit_bias=NEVER_END) for p in PROMPTS[:2]]
        results = await asyncio.gather(*(run(b, r) for r in requests))
        for text, finished in results:
            assert finished.reason == "length"
            assert finished.usage.completion_tokens == 200
            assert len(text) > 200
        assert b.stats()["kv_used"] <= 256
    finally:
        await b.close()


async def test_n_choices_decode_the_prompt_once(backend: LlamaCppBackend) -> None:
    history = "Remember this list: " + ", ".join(f"item {i}" for i in range(100)) + "."
    request = replace(chat(history, max_tokens=8, temperature=1.0, seed=5), n=3)
    gen = await backend.start(request)
    texts = {0: "", 1: "", 2: ""}
    finished: dict[int, Finished] = {}
    async for event in gen:
        if isinstance(event, Finished):
            finished[event.index] = event
        else:
            texts[event.index] += event.text
    assert sorted(finished) == [0, 1, 2]
    n_prompt = finished[0].usage.prompt_tokens
    assert n_prompt > 300
    assert finished[0].usage.cached_tokens == 0
    # choices 1 and 2 share choice 0's prompt cells and decode only its last token
    assert finished[1].usage.cached_tokens == finished[2].usage.cached_tokens == n_prompt - 1
    assert backend.stats()["kv_used"] <= n_prompt + 3 * 8 + 3
    assert len(set(texts.values())) > 1  # seeds 5, 6, 7


async def test_n_above_parallel_is_refused(backend: LlamaCppBackend) -> None:
    with pytest.raises(InvalidRequest, match="parallel"):
        await backend.start(replace(chat("hi"), n=5))


def notes(topic: str) -> str:
    return f"Remember these notes on {topic}: " + ", ".join(f"{topic} {i}" for i in range(50))


async def running(backend: LlamaCppBackend, text: str) -> Generation:
    """A request that keeps decoding until closed, once its first token is out."""
    gen = await backend.start(chat(text, max_tokens=400, logit_bias=NEVER_END))
    async for event in gen:
        assert isinstance(event, TokenEvent)
        break
    return gen


async def test_an_idle_conversation_waits_in_host_memory_and_comes_back_whole(
    backend: LlamaCppBackend,
) -> None:
    """While another request decodes, an idle cache leaves the KV cache (its cells would
    slow every decoding token) for host memory; the conversation's next request copies
    it back instead of decoding it again, and answers exactly as before."""
    first, f1 = await run(backend, chat(notes("apples"), max_tokens=16))
    other = await running(backend, "Count to a thousand.")
    stats = backend.stats()
    assert stats["host_cached"] == 1 and stats["host_cache_bytes"] > 0
    assert stats["kv_used"] < f1.usage.prompt_tokens  # only the running request's cells
    await other.aclose()
    again, f2 = await run(backend, chat(notes("apples"), max_tokens=16))
    assert f2.usage.cached_tokens == f2.usage.prompt_tokens - 1
    assert again == first


async def test_without_host_memory_idle_caches_stay_in_the_context(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config(host_cache_bytes=0))
    try:
        _, f1 = await run(b, chat(notes("pears"), max_tokens=8))
        other = await running(b, "Count to a thousand.")
        assert b.stats()["host_cached"] == 0
        assert b.stats()["kv_used"] > f1.usage.prompt_tokens
        _, f2 = await run(b, chat(notes("pears"), max_tokens=8))
        await other.aclose()
        assert f2.usage.cached_tokens == f2.usage.prompt_tokens - 1
    finally:
        await b.close()


async def test_host_memory_keeps_the_most_recent_within_its_budget(model_path: Path) -> None:
    # About 23 KB of KV a token: room for one parked conversation of ~230 tokens, not two.
    b = LlamaCppBackend("m", model_path, config(host_cache_bytes=8 << 20))
    try:
        for topic in ("plums", "figs"):
            await run(b, chat(notes(topic), max_tokens=8))
            other = await running(b, f"Count to a thousand, {topic}.")
            await other.aclose()
        stats = b.stats()
        assert stats["host_cached"] == 1 and 0 < stats["host_cache_bytes"] <= 8 << 20
        _, newest = await run(b, chat(notes("figs"), max_tokens=8))
        assert newest.usage.cached_tokens == newest.usage.prompt_tokens - 1
        _, oldest = await run(b, chat(notes("plums"), max_tokens=8))
        assert oldest.usage.cached_tokens < 40  # the chat template's opening only
    finally:
        await b.close()


async def test_a_full_host_cache_gives_back_the_entry_it_restores(model_path: Path) -> None:
    """Restoring a parked conversation parks what its slot held; with the host cache
    full, that pushes out the oldest entries, which must not be the one restored."""
    b = LlamaCppBackend("m", model_path, config(parallel=1))
    try:
        king = "Once upon a time in a land far away there lived a king who"
        alone, _ = await run(b, chat(king, max_tokens=8))
        await run(b, chat("The quick brown fox jumps over the lazy dog and then", max_tokens=8))
        assert len(b.scheduler.host) == 1  # the king's conversation, parked for the fox's
        b.scheduler.host.budget = b.scheduler.host.used * 3 // 2  # room for one, not two
        again, finished = await run(b, chat(king, max_tokens=8))
        assert again == alone and finished.usage.cached_tokens > 0
        assert (await run(b, chat("Hi", max_tokens=2)))[0]  # and the engine goes on
    finally:
        await b.close()


async def test_a_parked_conversation_waits_parked_while_cells_are_short(
    model_path: Path,
) -> None:
    b = LlamaCppBackend("m", model_path, config(parallel=2, ctx_size=256))
    try:
        planets = "List the planets of the solar system in order, one fact about each:"
        _, first = await run(b, chat(planets, max_tokens=8))
        sampling = SamplingParams(temperature=0.0, logit_bias=NEVER_END)
        count = GenerationRequest(model="m", prompt="Count:", sampling=sampling, max_tokens=245)
        running = asyncio.ensure_future(collect(await b.start(count)))
        # Until the cells left are fewer than the parked entry needs: it cannot come back
        # yet, and must still be there once they free up. (Bounded generously: on a
        # loaded machine a decode step can take a good part of a second.)
        for _ in range(12000):
            if b.scheduler.kv.used >= 232:
                break
            await asyncio.sleep(0.01)
        assert 256 - b.scheduler.kv.used < first.usage.prompt_tokens
        _, later = await run(b, chat(planets, max_tokens=8))
        await running
        assert later.usage.cached_tokens == first.usage.prompt_tokens - 1
    finally:
        await b.close()


async def test_text_held_for_a_stop_string_is_kept_when_the_model_ends(
    backend: LlamaCppBackend,
) -> None:
    text, finished = await run(backend, chat("Say hello.", max_tokens=64))
    assert finished.reason == "stop" and text
    # A stop string that starts like the reply's end but never comes: the end is held
    # back in case it does, and must come out when the model stops on its own.
    never = text[-1] + "\u2603\u2603"
    held, _ = await run(backend, replace(chat("Say hello.", max_tokens=64), stop=(never,)))
    assert held == text


async def test_later_choices_wait_for_a_long_prompt_without_timing_out(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config(parallel=2, batch_size=16, queue_timeout=0.5))
    try:
        prompt = " ".join(f"word{i}" for i in range(400))  # ~1,500 tokens, 16 a step
        gen = await b.start(replace(chat(prompt, max_tokens=2), n=2))
        finished = [e async for e in gen if isinstance(e, Finished)]
        assert sorted(f.index for f in finished) == [0, 1]
    finally:
        await b.close()


async def test_a_closed_backend_refuses_work_instead_of_crashing(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config())
    await b.close()
    with pytest.raises(EngineError, match="unloaded"):
        await b.start(chat("Hi"))
    with pytest.raises(EngineError):
        await b.tokenize("Hi")


async def test_a_slow_sampling_step_is_logged_with_the_request_id(
    backend: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every sequence of a batch waits while one samples: an operator is told which
    request held them up (the limit lowered so that any sampled step counts)."""
    monkeypatch.setattr(scheduler, "SLOW_SAMPLE_S", 0.0)
    slow = replace(chat("Hello", 8, temperature=0.7), request_id="req_slowone")
    with caplog.at_level(logging.WARNING, logger=scheduler.__name__):
        await run(backend, slow)
        await run(backend, replace(chat("Hello", 8), request_id="req_greedy"))
    warned = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert warned and all("req_slowone" in m and "Hello" not in m for m in warned)


# The thread re-raises after failing its requests, as a crash should.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_crashed_scheduler_ends_its_requests_without_the_exceptions_words(
    model_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the scheduler thread fails every request with an error a client may see:
    the exception's type, not its message (which may name files); the log has it all."""
    b = LlamaCppBackend("m", model_path, config())

    def crash(self: scheduler.Scheduler) -> None:
        raise RuntimeError(f"cannot map {model_path}")

    monkeypatch.setattr(scheduler.Scheduler, "_step", crash)
    try:
        with caplog.at_level(logging.ERROR, logger=scheduler.__name__):
            _, finished = await run(b, chat("Hi", 4))
        assert finished.reason == "error" and finished.error is not None
        assert "RuntimeError" in finished.error and str(model_path) not in finished.error
        assert str(model_path) in caplog.text
    finally:
        await b.close()


async def test_a_greedy_logit_bias_steers_the_batch_argmax(backend: LlamaCppBackend) -> None:
    """Greedy requests with a logit_bias take the batch's argmax path (no sampler chain):
    a ban moves the reply off its first token, a boost makes every token the boosted one,
    and an unbiased neighbour in the same batch keeps its own reply."""
    prompt = "Name three fruits."
    plain = await tokens(backend, replace(chat(prompt, max_tokens=6), logprobs=5))
    first = plain[0].token
    first_id = backend.scheduler.model.tokenize(first, add_special=False, parse_special=False)
    assert len(first_id) == 1
    banned = replace(chat(prompt, max_tokens=6, logit_bias={first_id[0]: -100.0}), logprobs=0)
    boosted = chat(prompt, max_tokens=4, logit_bias={first_id[0]: 100.0})
    other, (boost_text, _), neighbour = await asyncio.gather(
        tokens(backend, banned),
        run(backend, boosted),
        tokens(backend, replace(chat(prompt, 6), logprobs=5)),
    )
    assert other[0].token != first
    assert boost_text == first * 4
    assert first_divergence_is_a_near_tie(plain, neighbour) is None
