"""KvCache: which slot holds which tokens in which cells, checked against llama.cpp's own
view of the sequences."""

from __future__ import annotations

import pytest

from hearth.engine.llama_cpp.kv import KvCache, LlamaMemory, Slot, common_prefix
from tests.engine.llama_cpp.conftest import N_CELLS, N_SEQ, Context

TOKENS = list(range(400, 440))


@pytest.fixture
def kv(ctx: Context) -> KvCache:
    return KvCache(LlamaMemory(ctx.mem), N_CELLS, N_SEQ)


def fill(ctx: Context, kv: KvCache, slot: Slot, tokens: list[int]) -> None:
    """Decodes tokens after what the slot holds, then records them (as the scheduler does)."""
    ctx.decode(slot.seq_id, tokens, len(slot.tokens))
    kv.append(slot, tokens)


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        ([], [1, 2], 0),
        ([1, 2, 3], [1, 2, 3], 3),
        ([1, 2, 3], [1, 2], 2),
        ([1, 2], [1, 2, 3, 4], 2),
        ([1, 9, 3], [1, 2, 3], 1),
        ([5], [1], 0),
    ],
)
def test_common_prefix(a: list[int], b: list[int], n: int) -> None:
    assert common_prefix(a, b) == n


def test_every_appended_token_takes_a_cell_of_its_own(ctx: Context, kv: KvCache) -> None:
    first, second = kv.slots[0], kv.slots[1]
    fill(ctx, kv, first, TOKENS[:5])
    fill(ctx, kv, second, TOKENS[:3])
    fill(ctx, kv, first, TOKENS[5:7])
    assert first.tokens == TOKENS[:7] and second.tokens == TOKENS[:3]
    assert len(set(first.cells + second.cells)) == 10
    assert kv.used == 10 and kv.free == N_CELLS - 10
    assert ctx.pos_max(0) == 6 and ctx.pos_max(1) == 2


def test_trim_drops_tokens_here_and_in_llama_cpp(ctx: Context, kv: KvCache) -> None:
    slot = kv.slots[0]
    fill(ctx, kv, slot, TOKENS[:10])
    kv.trim(slot, 4)
    assert slot.tokens == TOKENS[:4] and len(slot.cells) == 4
    assert kv.used == 4 and ctx.pos_max(0) == 3
    kv.trim(slot, 10)  # past the end: nothing to drop
    assert kv.used == 4 and ctx.pos_max(0) == 3
    kv.trim(slot, 0)
    assert slot.tokens == [] and kv.used == 0 and ctx.pos_max(0) == -1


def test_a_shared_prefix_counts_once_until_its_last_holder_drops_it(
    ctx: Context, kv: KvCache
) -> None:
    src, dst = kv.slots[0], kv.slots[1]
    fill(ctx, kv, src, TOKENS[:10])
    kv.share(src, dst, 6)
    assert dst.tokens == TOKENS[:6] and dst.cells == src.cells[:6]
    assert ctx.pos_max(1) == 5
    assert kv.used == 10
    assert kv.exclusive(src) == 4 and kv.exclusive(dst) == 0
    fill(ctx, kv, dst, [7, 8])
    assert kv.used == 12 and kv.exclusive(dst) == 2
    kv.trim(src, 0)
    assert kv.used == 8 and kv.exclusive(dst) == 8  # the shared six are dst's alone now
    assert ctx.pos_max(1) == 7
    kv.trim(dst, 2)
    assert kv.used == 2
    kv.trim(dst, 0)
    assert kv.used == 0


def test_sharing_replaces_what_the_destination_held(ctx: Context, kv: KvCache) -> None:
    src, dst = kv.slots[0], kv.slots[1]
    fill(ctx, kv, dst, [1, 2, 3, 4, 5])
    fill(ctx, kv, src, TOKENS[:8])
    kv.share(src, dst, 3)
    assert dst.tokens == TOKENS[:3]
    assert kv.used == 8  # dst's own five cells are free again
    assert ctx.pos_max(1) == 2


def test_the_best_source_shares_the_longest_prefix_busy_or_idle(ctx: Context, kv: KvCache) -> None:
    assert kv.best_source(TOKENS) == (None, 0)
    fill(ctx, kv, kv.slots[0], TOKENS[:4])
    fill(ctx, kv, kv.slots[1], [*TOKENS[:9], 1, 2])
    fill(ctx, kv, kv.slots[2], TOKENS[:7])
    kv.slots[1].seq = object()  # type: ignore[assignment]  # busy: still a source
    assert kv.best_source(TOKENS) == (kv.slots[1], 9)
    assert kv.best_source(TOKENS[:5]) == (kv.slots[1], 5)  # ties: the first slot that has it
    assert kv.best_source([1, *TOKENS]) == (None, 0)


def test_evicting_takes_idle_slots_least_recently_used_first(ctx: Context, kv: KvCache) -> None:
    for i, slot in enumerate(kv.slots):
        fill(ctx, kv, slot, TOKENS[i * 10 : i * 10 + 10])
    kv.slots[0].last_used, kv.slots[1].last_used = 3.0, 1.0
    kv.slots[2].last_used, kv.slots[3].last_used = 2.0, 0.0
    kv.slots[3].seq = object()  # type: ignore[assignment]  # busy: never evicted
    saved: list[tuple[int, int]] = []
    need = N_CELLS - 40 + 20  # two slots' worth
    assert kv.evict_idle(need, save=lambda s: saved.append((s.seq_id, len(s.tokens))))
    assert saved == [(1, 10), (2, 10)]  # each seen whole, before it went
    assert kv.slots[1].tokens == [] and kv.slots[2].tokens == []
    assert ctx.pos_max(1) == -1 and ctx.pos_max(2) == -1
    assert kv.slots[0].tokens == TOKENS[:10] and kv.free == need


def test_evicting_spares_the_kept_slot_and_says_when_it_falls_short(
    ctx: Context, kv: KvCache
) -> None:
    for i, slot in enumerate(kv.slots[:3]):
        fill(ctx, kv, slot, TOKENS[i * 10 : i * 10 + 10])
        slot.last_used = float(i)
    assert not kv.evict_idle(N_CELLS, keep=kv.slots[0])
    assert kv.slots[0].tokens == TOKENS[:10]
    assert kv.slots[1].tokens == [] and kv.slots[2].tokens == []
    assert kv.free == N_CELLS - 10
    assert kv.evict_idle(N_CELLS - 10)  # already free: nothing more goes
    assert kv.slots[0].tokens == TOKENS[:10]
