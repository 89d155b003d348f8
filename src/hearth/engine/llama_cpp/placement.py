"""Where a sequence's KV cells live: the placement policy over KvCache and HostCache.

Which free slot a request gets and which cached prefix it starts from (its own, shared
from another slot, or copied back from host memory); which idle caches leave the
context, least recently used first, and whether they are parked in host memory first.
Pure logic over the two caches: nothing here decodes, samples or touches a request.
"""

from __future__ import annotations

from hearth.engine.llama_cpp.host_cache import HostCache
from hearth.engine.llama_cpp.kv import KvCache, Slot, common_prefix


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
