"""HostCache: idle sequences' cells copied to host memory and back, within a byte budget."""

from __future__ import annotations

import numpy as np

from hearth.engine.llama_cpp.host_cache import HostCache, LlamaSeqStates
from hearth.engine.llama_cpp.lib import llama
from tests.engine.llama_cpp.conftest import N_CELLS, Context

TOKENS = list(range(500, 560))
MB = 1 << 20


def state_size(ctx: Context, seq_id: int) -> int:
    return int(llama.llama_state_seq_get_size(ctx.ptr, seq_id))


def clear(ctx: Context, seq_id: int) -> None:
    llama.llama_memory_seq_rm(ctx.mem, seq_id, -1, -1)


def test_a_parked_sequence_comes_back_whole_in_another_sequence(ctx: Context) -> None:
    prompt = TOKENS[:30]
    ctx.decode(0, prompt, 0)
    host = HostCache(LlamaSeqStates(ctx.ptr), 64 * MB)
    assert host.park(0, prompt)
    assert len(host) == 1 and host.used == state_size(ctx, 0) > 0
    clear(ctx, 0)
    key, n = host.best([*prompt, 7])
    assert key is not None and n == len(prompt)
    entry = host.take(key)
    assert len(host) == 0 and host.used == 0
    assert host.load(entry, 2)
    assert ctx.pos_max(2) == len(prompt) - 1
    # The next token decodes as if the prompt had been decoded in this sequence.
    restored = ctx.decode(2, [7], len(prompt))
    fresh = ctx.decode(3, [*prompt, 7], 0)
    np.testing.assert_allclose(restored, fresh, atol=1e-3)


def test_an_entry_that_cannot_be_placed_leaves_the_sequence_empty(ctx: Context) -> None:
    ctx.decode(0, TOKENS[:40], 0)
    host = HostCache(LlamaSeqStates(ctx.ptr), 64 * MB)
    assert host.park(0, TOKENS[:40])
    entry = host.take(host.best(TOKENS)[0])  # type: ignore[arg-type]
    ctx.decode(1, list(range(1000, 1110)), 0)  # the context full but for a few cells
    ctx.decode(2, list(range(1200, 1300)), 0)
    assert N_CELLS - 40 - 110 - 100 < 40
    assert not host.load(entry, 3)
    assert ctx.pos_max(3) == -1
    assert ctx.pos_max(0) == 39 and ctx.pos_max(1) == 109  # the others untouched


def test_nothing_is_parked_that_the_budget_cannot_hold(ctx: Context) -> None:
    ctx.decode(0, TOKENS[:20], 0)
    size = state_size(ctx, 0)
    host = HostCache(LlamaSeqStates(ctx.ptr), size - 1)
    assert not host.park(0, TOKENS[:20])
    assert len(host) == 0 and host.used == 0
    # no tokens: nothing to come back to
    assert not HostCache(LlamaSeqStates(ctx.ptr), 64 * MB).park(0, [])


def test_the_least_recently_parked_go_first_to_stay_within_the_budget(ctx: Context) -> None:
    prompts = [TOKENS[i * 10 : i * 10 + 10] for i in range(3)]
    for seq_id, prompt in enumerate(prompts):
        ctx.decode(seq_id, prompt, 0)
    size = state_size(ctx, 0)
    assert state_size(ctx, 1) == state_size(ctx, 2) == size
    host = HostCache(LlamaSeqStates(ctx.ptr), 2 * size)
    assert host.park(0, prompts[0]) and host.park(1, prompts[1])
    assert host.park(2, prompts[2])
    assert len(host) == 2 and host.used == 2 * size
    assert host.best(prompts[0]) == (None, 0)
    # An entry taken and put back (it could not be loaded after all) is the most recent.
    key, _ = host.best(prompts[1])
    host.put(host.take(key))  # type: ignore[arg-type]
    assert host.park(0, prompts[0])
    assert host.best(prompts[2]) == (None, 0)
    assert host.best(prompts[1])[1] == 10 and host.best(prompts[0])[1] == 10


def test_parking_a_longer_sequence_replaces_the_entries_it_extends(ctx: Context) -> None:
    host = HostCache(LlamaSeqStates(ctx.ptr), 64 * MB)
    ctx.decode(0, TOKENS[:10], 0)
    assert host.park(0, TOKENS[:10])
    ctx.decode(1, [*TOKENS[:5], 1, 2], 0)
    assert host.park(1, [*TOKENS[:5], 1, 2])  # shares a prefix but does not extend
    ctx.decode(2, TOKENS[:30], 0)
    assert host.park(2, TOKENS[:30])  # a shorter one does not replace it
    ctx.decode(0, TOKENS[10:20], 10)
    assert host.park(0, TOKENS[:20])  # extends the first entry: that one goes
    assert len(host) == 3
    assert host.best(TOKENS[:20])[1] == 20
    assert host.best(TOKENS)[1] == 30
    # held: the 7-, 30- and 20-token entries; the 10-token one is gone
    assert host.used == state_size(ctx, 0) + state_size(ctx, 1) + state_size(ctx, 2)
