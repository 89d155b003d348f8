"""A reasoning watch: it counts the tokens of a sequence's reasoning block (its markers
included: what is not the answer), and with a budget, once the sequence has thought
`limit` tokens inside the block, the scheduler writes the family's closing marker itself
(the tokens of `close_ids`, decoded like sampled ones) and the model goes on with its
answer, rather than the reply being cut while it still thinks."""

from __future__ import annotations

import sys

# A reply that has not opened its reasoning within this many tokens answers without it.
_OPEN_WITHIN = 16


class ReasoningBudget:
    def __init__(
        self, opener: str, ender: str, close_ids: list[int], limit: int, *, inside: bool
    ) -> None:
        self._open = opener.encode()
        self._end = ender.encode()
        self._close_ids = close_ids
        self.limit = limit
        self._state = "inside" if inside else "before"
        self._tail = b""
        self._seen = 0
        self._forced: list[int] = []
        self.spent = 0  # tokens inside the block so far (what the budget bounds)
        self.thought = 0  # tokens of the block, its markers included

    @classmethod
    def unbounded(cls, opener: str, ender: str, *, inside: bool) -> ReasoningBudget:
        """A watch that only counts."""
        return cls(opener, ender, [], sys.maxsize, inside=inside)

    def forced(self) -> int | None:
        """The next token to write instead of sampling one, while closing the block."""
        if not self._forced:
            return None
        self.thought += 1
        return self._forced.pop(0)

    def push(self, piece: bytes) -> None:
        """Notes one generated token's text (special tokens written out)."""
        if self._state == "after":
            return
        tail = self._tail + piece
        if self._state == "before":
            self._seen += 1
            at = tail.find(self._open)
            if at >= 0:
                self._state, tail = "inside", tail[at + len(self._open) :]
                self.thought += 1
            elif self._seen >= _OPEN_WITHIN:
                self._state = "after"
        elif self._end in tail:
            self._state = "after"
            self.thought += 1
        else:
            self.spent += 1
            self.thought += 1
            if self.spent >= self.limit and not self._forced:
                self._forced = list(self._close_ids)
                self._state = "after"  # what follows is the marker, then the answer
        self._tail = tail[-(len(self._open) + len(self._end)) :]
