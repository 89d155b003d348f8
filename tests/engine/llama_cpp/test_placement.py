"""The KV placement policy, over fake memory: which slot and prefix a request gets, what
is parked in host memory and what is dropped. No model is loaded."""

from __future__ import annotations

import numpy as np
import pytest

from hearth.engine.llama_cpp.host_cache import HostCache
from hearth.engine.llama_cpp.kv import KvCache, Slot
from hearth.engine.llama_cpp.placement import Placement, loses_cells, next_to_admit, yields_slot

BYTES = 8  # a fake state is the sequence's tokens as int64


class Memory:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def remove(self, seq_id: int, start: int) -> None:
        self.calls.append(("remove", seq_id, start))

    def copy(self, src: int, dst: int, end: int) -> None:
        self.calls.append(("copy", src, dst, end))


class States:
    """A sequence's saved state is its tokens; restoring records what came back where."""

    def __init__(self) -> None:
        self.kv: KvCache | None = None
        self.restored: list[tuple[int, list[int]]] = []

    def save(self, seq_id: int, limit: int) -> np.ndarray | None:
        assert self.kv is not None
        tokens = self.kv.slots[seq_id].tokens
        state = np.asarray(tokens, dtype=np.int64).view(np.uint8)
        return state if 0 < state.size <= limit else None

    def restore(self, state: np.ndarray, seq_id: int) -> bool:
        self.restored.append((seq_id, state.view(np.int64).tolist()))
        return True


def setup(cells: int = 1000, slots: int = 3, budget_tokens: int = 1000) -> Placement:
    states = States()
    kv = KvCache(Memory(), cells, slots)
    states.kv = kv
    return Placement(kv, HostCache(states, budget_tokens * BYTES))


def hold(
    p: Placement, seq_id: int, tokens: list[int], last_used: float, busy: bool = False
) -> Slot:
    slot = p.kv.slots[seq_id]
    p.kv.append(slot, tokens)
    slot.last_used = last_used
    if busy:
        slot.seq = object()  # type: ignore[assignment]
    return slot


def free(p: Placement) -> list[Slot]:
    return [s for s in p.kv.slots if s.seq is None]


def memory(p: Placement) -> Memory:
    assert isinstance(p.kv.memory, Memory)
    return p.kv.memory


def states(p: Placement) -> States:
    assert isinstance(p.host.states, States)
    return p.host.states


def test_a_request_continues_the_slot_that_holds_its_prefix() -> None:
    p = setup()
    hold(p, 0, [9, 9], last_used=1)
    own = hold(p, 1, list(range(10)), last_used=2)
    slot, keep = p.place([*range(10), 11, 12], free(p))
    assert (slot, keep) == (own, 10)
    assert memory(p).calls == []


def test_the_last_token_is_always_decoded_again() -> None:
    """Its logits are what the first sampled token comes from."""
    p = setup()
    own = hold(p, 0, list(range(10)), last_used=1)
    slot, keep = p.place(list(range(10)), free(p))
    assert (slot, keep) == (own, 9)
    assert memory(p).calls == [("remove", 0, 9)]
    assert own.tokens == list(range(9))


def test_a_busy_slots_prefix_is_shared_not_decoded_again() -> None:
    p = setup()
    hold(p, 0, list(range(20)), last_used=5, busy=True)
    hold(p, 2, [7], last_used=1)
    slot, keep = p.place([*range(15), 99], free(p))
    assert (slot.seq_id, keep) == (1, 15)  # the least recently used free slot
    assert ("copy", 0, 1, 15) in memory(p).calls
    assert p.kv.used == 20 + 1  # shared cells counted once


def test_a_parked_conversation_comes_back_from_host_memory() -> None:
    p = setup()
    convo = list(range(100, 130))
    hold(p, 0, convo, last_used=1)
    p.clear(p.kv.slots[0])
    assert len(p.host) == 1 and p.kv.used == 0
    slot, keep = p.place([*convo, 1, 2], free(p))
    assert keep == len(convo)
    assert states(p).restored == [(slot.seq_id, convo)]
    assert slot.tokens == convo and len(p.host) == 0


def test_a_full_host_cache_gives_back_the_entry_it_restores() -> None:
    """Clearing the chosen slot parks what it held, which pushes the oldest entry out of
    a cache with room for one: the entry being restored must be taken out first."""
    p = setup(slots=1, budget_tokens=40)
    convo = list(range(100, 130))
    hold(p, 0, convo, last_used=1)
    p.clear(p.kv.slots[0])
    hold(p, 0, [7] * 30, last_used=0.5)  # the slot chosen: parking this fills the cache
    slot, keep = p.place([*convo, 5], free(p))
    assert slot.seq_id == 0 and keep == len(convo)
    assert states(p).restored[-1] == (0, convo)
    assert p.host.best([7] * 30)[1] == 30  # what the slot held, parked in its place


def test_with_no_room_the_entry_stays_parked() -> None:
    p = setup(cells=40)
    convo = list(range(100, 130))
    hold(p, 0, convo, last_used=1)
    p.clear(p.kv.slots[0])
    hold(p, 1, list(range(25)), last_used=2, busy=True)
    slot, keep = p.place([*convo, 5], free(p))
    assert keep == 0 and slot.tokens == []
    assert len(p.host) == 1
    assert p.host.best([*convo, 5])[1] == len(convo)


def test_idle_caches_are_parked_then_cleared_unless_shared_whole() -> None:
    p = setup()
    hold(p, 0, list(range(20)), last_used=3, busy=True)
    p.kv.share(p.kv.slots[0], p.kv.slots[1], 10)  # slot 1: all of it shared with slot 0
    hold(p, 2, [50, 51, 52], last_used=1)
    p.park_idle()
    assert p.kv.slots[1].tokens == [] and p.kv.slots[2].tokens == []
    assert p.kv.slots[0].tokens == list(range(20))  # busy: untouched
    assert len(p.host) == 1 and p.host.best([50, 51, 52, 53])[1] == 3


def test_idle_cells_are_those_of_idle_slots_while_there_is_host_memory() -> None:
    p = setup()
    hold(p, 0, list(range(20)), last_used=3, busy=True)
    hold(p, 2, [50, 51, 52], last_used=1)
    assert p.idle_cells() == 3
    p.park_idle()
    assert p.idle_cells() == 0
    bare = setup(budget_tokens=0)
    hold(bare, 2, [50, 51, 52], last_used=1)
    assert bare.idle_cells() == 0  # nowhere to park them


def test_without_host_memory_idle_caches_stay() -> None:
    p = setup(budget_tokens=0)
    hold(p, 2, [50, 51, 52], last_used=1)
    p.park_idle()
    assert p.kv.slots[2].tokens == [50, 51, 52]


def test_room_clears_the_least_recently_used_idle_slot_first() -> None:
    p = setup(cells=100)
    old = hold(p, 0, list(range(40)), last_used=1)
    new = hold(p, 1, list(range(200, 240)), last_used=2)
    assert p.room(30)
    assert old.tokens == [] and new.tokens == list(range(200, 240))
    assert len(p.host) == 1  # parked on the way out
    assert not p.room(101)


def test_a_long_tail_is_kept_and_its_prefix_shared_into_an_empty_slot() -> None:
    """A slot whose cache goes on far past the shared prefix keeps it (a conversation
    that may continue); the prefix is shared into an empty slot instead."""
    p = setup()
    convo = hold(p, 0, [1, 2, 3, 4, 5, *range(100, 130)], last_used=1)
    slot, keep = p.place([1, 2, 3, 4, 5, 200], free(p))
    assert keep == 5 and slot is not convo and slot.tokens == [1, 2, 3, 4, 5]
    assert convo.tokens == [1, 2, 3, 4, 5, *range(100, 130)]


@pytest.mark.parametrize("tail", [[6], [6, 7]])
def test_a_short_tail_is_trimmed_in_place(tail: list[int]) -> None:
    """A rewritten last reply is not worth copying the whole sequence for."""
    p = setup()
    convo = hold(p, 0, [1, 2, 3, 4, 5, *tail], last_used=1)
    slot, keep = p.place([1, 2, 3, 4, 5, 200], free(p))
    assert (slot, keep) == (convo, 5)
    assert convo.tokens == [1, 2, 3, 4, 5]


# ---- who goes first: batch work yields to interactive requests --------------------------


class Seq:
    def __init__(self, name: str, batch: bool = False, ready: bool = True) -> None:
        self.name, self.batch, self.ready = name, batch, ready


def _ready(seq: Seq) -> bool:
    return seq.ready


def test_an_interactive_request_is_admitted_before_batch_work_queued_ahead_of_it() -> None:
    waiting = [Seq("b1", batch=True), Seq("b2", batch=True), Seq("i1"), Seq("i2")]
    assert next_to_admit(waiting, _ready).name == "i1"  # type: ignore[union-attr]
    # An interactive one not ready yet (a later choice) does not hold batch work back.
    waiting = [Seq("b1", batch=True), Seq("i1", ready=False)]
    assert next_to_admit(waiting, _ready).name == "b1"  # type: ignore[union-attr]
    assert next_to_admit([Seq("i1", ready=False)], _ready) is None
    assert next_to_admit([], _ready) is None


def test_a_waiting_interactive_request_takes_the_newest_batch_sequences_slot() -> None:
    running = [Seq("b1", batch=True), Seq("i0"), Seq("b2", batch=True), Seq("i9")]
    victim = yields_slot(running, [Seq("b3", batch=True), Seq("i1")], _ready)
    assert victim is running[2]
    # Nothing is preempted for batch work, for an interactive one not ready, or when
    # only interactive requests decode.
    assert yields_slot(running, [Seq("b3", batch=True)], _ready) is None
    assert yields_slot(running, [Seq("i1", ready=False)], _ready) is None
    assert yields_slot([Seq("i0"), Seq("i9")], [Seq("i1")], _ready) is None


def test_batch_sequences_lose_their_cells_first() -> None:
    running = [Seq("i0"), Seq("b1", batch=True), Seq("b2", batch=True), Seq("i9")]
    assert loses_cells(running) is running[2]
    only = [Seq("i0"), Seq("i9")]
    assert loses_cells(only) is only[1]
