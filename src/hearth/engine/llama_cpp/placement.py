"""Where a sequence's KV cells live: the placement policy over KvCache and HostCache.

Which free slot a request gets and which cached prefix it starts from (its own, shared
from another slot, or copied back from host memory); which idle caches leave the
context, least recently used first, and whether they are parked in host memory first.
Pure logic over the two caches: nothing here decodes, samples or touches a request.

And who goes first (`next_to_admit`, `yields_slot`, `loses_cells`): batch work (Message
Batches) gives way to interactive requests. A waiting interactive request is admitted
before any waiting batch one, and when every slot is taken it takes the slot of a
decoding batch sequence, which waits (its cache parked) and resumes where it was; so an
interactive request waits behind batch work for at most the step being decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from hearth.engine.llama_cpp.host_cache import HostCache
from hearth.engine.llama_cpp.kv import KvCache, Slot, common_prefix


class Queued(Protocol):
    batch: bool  # batch priority: yields to interactive requests


Q = TypeVar("Q", bound=Queued)


def next_to_admit(waiting: Iterable[Q], ready: Callable[[Q], bool]) -> Q | None:
    """The first ready interactive sequence in queue order, else the first ready batch one."""
    first_batch = None
    for seq in waiting:
        if not ready(seq):
            continue
        if not seq.batch:
            return seq
        if first_batch is None:
            first_batch = seq
    return first_batch


def yields_slot(running: Sequence[Q], waiting: Iterable[Q], ready: Callable[[Q], bool]) -> Q | None:
    """With every slot taken: the batch sequence that gives its slot to a ready interactive
    one waiting (the most recently admitted, which has done the least), or None."""
    if not any(not s.batch and ready(s) for s in waiting):
        return None
    return next((s for s in reversed(running) if s.batch), None)


def loses_cells(running: Sequence[Q]) -> Q:
    """Whose cells go when a decoding step has too few: the newest batch sequence, else
    the newest (it loses its place, not its progress)."""
    return next((s for s in reversed(running) if s.batch), running[-1])


class Placement:
    def __init__(self, kv: KvCache, host: HostCache) -> None:
        self.kv = kv
        self.host = host

    def place(self, tokens: list[int], free: list[Slot]) -> tuple[Slot, int]:
        """Pick a free slot and give it the longest cached prefix of `tokens`: its own,
        shared from whichever slot holds it, or copied back from host memory. Returns
        the slot and how many tokens it holds already. The last token is always decoded
        again: its logits are what the first sampled token comes from."""
        own = max(free, key=lambda s: (common_prefix(s.tokens, tokens), -s.last_used))
        own_len = common_prefix(own.tokens, tokens)
        source, source_len = self.kv.best_source(tokens)
        parked, parked_len = self.host.best(tokens)
        if parked is not None and parked_len > max(own_len, source_len):
            slot = min(free, key=lambda s: s.last_used)
            # Taken before the slot is cleared: parking what the slot held may push the
            # oldest entries out of a full host cache, this one among them.
            entry = self.host.take(parked)
            self.clear(slot)
            if self.room(len(entry.tokens), keep=slot) and self.host.load(entry, slot.seq_id):
                self.kv.append(slot, entry.tokens)
                keep = min(parked_len, len(tokens) - 1)
                self.kv.trim(slot, keep)
                return slot, keep
            # No room for it while others decode: it stays parked for the next try.
            self.host.put(entry)
            return slot, 0
        if source is not None and source_len > own_len and source is not own:
            slot = min(free, key=lambda s: s.last_used)
            keep = min(source_len, len(tokens) - 1)
            self.save(slot)
            self.kv.share(source, slot, keep)
            return slot, keep
        keep = min(own_len, len(tokens) - 1)
        if keep < len(own.tokens) - keep:
            # What the slot holds past the shared prefix is most of it, worth keeping: the
            # prefix is shared into an empty slot if there is one, else it is saved first.
            # (A short tail, like the reply a client rewrote in a conversation's next
            # turn, is not worth copying the whole sequence for.)
            empty = next((s for s in free if not s.tokens), None)
            if empty is not None:
                if keep:
                    self.kv.share(own, empty, keep)
                return empty, keep
            self.save(own)
        self.kv.trim(own, keep)
        return own, keep

    def room(self, need: int, keep: Slot | None = None) -> bool:
        """Free `need` cells by clearing idle slots (but `keep`), least recently used
        first, each parked in host memory first where it fits."""
        return self.kv.evict_idle(need, keep=keep, save=self.save)

    def idle_cells(self) -> int:
        """Cells held by idle slots: what park_idle would move out (0 without a host cache)."""
        if not self.host.budget:
            return 0
        return sum(len(s.tokens) for s in self.kv.slots if s.seq is None)

    def park_idle(self) -> None:
        """While anything decodes, idle caches wait in host memory, not in the context,
        where each of their cells would slow every decoding token (see host_cache)."""
        if not self.host.budget:
            return
        for slot in self.kv.slots:
            if slot.seq is None and slot.tokens:
                self.clear(slot)

    def save(self, slot: Slot) -> None:
        """Copy an idle slot's cache to host memory before it leaves the context, unless
        another slot holds all of it."""
        if self.host.budget and slot.tokens and self.kv.exclusive(slot):
            self.host.park(slot.seq_id, slot.tokens)

    def clear(self, slot: Slot) -> None:
        self.save(slot)
        self.kv.trim(slot, 0)
