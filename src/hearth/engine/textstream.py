"""Turning token bytes into text a client may see: UTF-8 reassembly and stop strings.

Shared by every local backend, so stop handling is written once. A stop string is never
sent, also when it arrives split across tokens: text that could be the start of a stop
string is held back until it is known not to be.
"""

from __future__ import annotations

import codecs


class Utf8Stream:
    """Token pieces are bytes and may split a character; emit only whole characters."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, piece: bytes) -> str:
        return self._decoder.decode(piece)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class StopMatcher:
    """Finds the earliest stop string in the text stream and holds back possible prefixes."""

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.matched: str | None = None  # the stop string that ended the text, once one has

    def push(self, text: str) -> tuple[str, bool]:
        """Returns (text that is safe to emit, whether a stop string was reached)."""
        if not self._stops:
            return text, False
        buf = self._held + text
        cut = -1
        for stop in self._stops:
            at = buf.find(stop)
            if at != -1 and (cut == -1 or at < cut):
                cut, self.matched = at, stop
        if cut != -1:
            self._held = ""
            return buf[:cut], True
        hold = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buf)), hold, -1):
                if buf.endswith(stop[:k]):
                    hold = k
                    break
        self._held = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold], False

    def flush(self) -> str:
        """At the end of generation nothing more can complete a stop: release what is held."""
        held, self._held = self._held, ""
        return held


class OutputText:
    """UTF-8 reassembly followed by stop matching: bytes in, emit-able text out."""

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._utf8 = Utf8Stream()
        self._stops = StopMatcher(stops)

    def push(self, piece: bytes) -> tuple[str, bool]:
        return self._stops.push(self._utf8.push(piece))

    @property
    def matched(self) -> str | None:
        """The stop string that ended the text (Anthropic's reply names it)."""
        return self._stops.matched

    def flush(self) -> str:
        text, stopped = self._stops.push(self._utf8.flush())
        return text if stopped else text + self._stops.flush()
