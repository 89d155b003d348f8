"""Batch work yields to interactive requests, with the real model: an interactive request
sent while batch requests hold every slot is admitted within a step or two (counted in
the batch's tokens, not in seconds), and the batch requests resume and finish whole."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from hearth.core.errors import Overloaded
from hearth.engine.base import Generation
from hearth.engine.llama_cpp.backend import LlamaCppBackend
from hearth.engine.types import Finished, TokenEvent
from tests.engine.test_llama_cpp import NEVER_END, PROMPTS, chat, collect, config

BATCH_TOKENS = 150


async def test_an_interactive_request_takes_a_batch_slot_within_a_step(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config(parallel=2))
    try:
        counts = [0, 0]
        order: list[str] = []
        decoding = asyncio.Event()

        async def drain(i: int, gen: Generation) -> Finished:
            async for event in gen:
                if isinstance(event, TokenEvent):
                    counts[i] += 1
                    if min(counts) >= 5:
                        decoding.set()
                elif isinstance(event, Finished):
                    order.append(f"batch{i}")
                    return event
            raise AssertionError("no Finished event")

        batch = [
            replace(chat(p, max_tokens=BATCH_TOKENS, logit_bias=NEVER_END), priority="batch")
            for p in PROMPTS[:2]
        ]
        gens = [await b.start(r) for r in batch]
        tasks = [asyncio.create_task(drain(i, g)) for i, g in enumerate(gens)]
        await decoding.wait()  # both decoding: every slot is taken by batch work
        assert b.stats()["running"] == 2
        before = sum(counts)
        interactive = await b.start(chat(PROMPTS[2], max_tokens=4))
        admitted_after = sum(counts) - before
        text, finished = await collect(interactive)
        order.append("interactive")
        results = await asyncio.gather(*tasks)
        # Admitted within a step or two of the batch's decoding (each step is one token of
        # each batch sequence), not after a batch request's 150 tokens.
        assert admitted_after <= 2 * 3, admitted_after
        assert order[0] == "interactive", order
        assert finished.usage.completion_tokens == 4 and text
        for result in results:  # the batch requests resumed where they were, and finished
            assert result.reason == "length"
            assert result.usage.completion_tokens == BATCH_TOKENS
        assert counts == [BATCH_TOKENS, BATCH_TOKENS]
    finally:
        await b.close()


async def test_batch_requests_wait_where_an_interactive_one_is_refused(model_path: Path) -> None:
    b = LlamaCppBackend("m", model_path, config(parallel=1, max_queue=0))
    try:
        busy = await b.start(chat(PROMPTS[0], max_tokens=30, logit_bias=NEVER_END))
        waiting = asyncio.create_task(b.start(replace(chat(PROMPTS[1], 3), priority="batch")))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # queued, although the queue holds no interactive one
        with pytest.raises(Overloaded):
            await b.start(chat(PROMPTS[2], max_tokens=3))
        await collect(busy)
        _, finished = await collect(await waiting)
        assert finished.reason in {"stop", "length"}
    finally:
        await b.close()
