"""One choice's output text → content and tool calls, as it streams.

Hermes calls (`<tool_call>{"name": …, "arguments": {…}}</tool_call>`, also a list of
such objects inside one pair of tags) and a reply that is nothing but such JSON are
calls. Content is passed on as it comes, except a possible start of `<tool_call>` at
its end, which waits for the next piece, so no call syntax ever leaks into content.
A call is announced (id and name) as soon as its name is known, then its arguments
stream as they are written; every argument piece is part of one JSON object. A call ends
at the first closing tag outside its JSON strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any

from hearth.chat.tools import CALL_CLOSE, CALL_OPEN
from hearth.chat.types import ToolCall, ToolCallDelta
from hearth.core.ids import new_id

Piece = str | ToolCallDelta

_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*(?=\{)')


def _held(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class _Strings:
    """Where JSON text is inside a string, a character at a time."""

    def __init__(self) -> None:
        self.inside = False
        self.escaped = False

    def outside(self, ch: str) -> bool:
        """Steps over `ch`; whether it stands outside every string (a quote that opens
        or closes one belongs to it)."""
        if self.inside:
            if self.escaped:
                self.escaped = False
            elif ch == "\\":
                self.escaped = True
            elif ch == '"':
                self.inside = False
            return False
        if ch == '"':
            self.inside = True
            return False
        return True

    def find_close(self, text: str) -> int:
        """Where the first closing tag outside a string starts in `text`, or -1; the
        state advances up to it (or over all of `text`). A closing tag written inside an
        argument's string value is part of that value, not the call's end (the call
        grammar allows any character in a string). Text scanned again (a held partial
        tag) changes nothing: a tag holds no quote or backslash."""
        for i, ch in enumerate(text):
            if self.outside(ch) and ch == "<" and text.startswith(CALL_CLOSE, i):
                return i
        return -1


class _ObjectScanner(_Strings):
    """Finds where a JSON object that starts at the first character ends."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.done = False

    def feed(self, text: str) -> int:
        """Consumes `text` up to the end of the object; returns how much it consumed."""
        for i, ch in enumerate(text):
            if not self.outside(ch):
                continue
            if ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth == 0:
                    self.done = True
                    return i + 1
        return len(text)


class ToolCallParser:
    def __init__(self, names: Collection[str], make_id: Callable[[], str] | None = None):
        self._names = set(names)
        self._make_id = make_id or (lambda: new_id("call_"))
        self._buf = ""
        self._started = False  # has anything but whitespace been seen
        self._bare = False  # the reply opened with JSON: held whole until the end
        self._in_call = False
        self._body = ""
        self._open: ToolCall | None = None  # the call whose arguments are streaming
        self._args_at = 0  # where its arguments start in _body
        self._scanner = _ObjectScanner()
        self._strings = _Strings()  # where the body's strings are, to find its end
        self._gap = ""  # whitespace after a call: dropped unless more content follows
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> list[Piece]:
        self._buf += text
        out: list[Piece] = []
        while True:
            if not self._in_call:
                if not self._started:
                    stripped = self._buf.lstrip()
                    if not stripped:
                        return out
                    self._started = True
                    self._bare = stripped[0] in "{["
                if self._bare:
                    return out
                at = self._buf.find(CALL_OPEN)
                if at < 0:
                    keep = _held(self._buf, CALL_OPEN)
                    self._content(out, self._buf[: len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep :]
                    return out
                before = self._buf[:at]
                if before.strip():
                    self._content(out, self._gap + before)
                self._gap = ""
                self._buf = self._buf[at + len(CALL_OPEN) :]
                self._in_call, self._body = True, ""
                self._strings = _Strings()
                continue
            at = self._strings.find_close(self._buf)
            if at < 0:
                keep = 0 if self._strings.inside else _held(self._buf, CALL_CLOSE)
                self._body += self._buf[: len(self._buf) - keep]
                self._buf = self._buf[len(self._buf) - keep :]
                self._stream(out)
                return out
            self._body += self._buf[:at]
            self._buf = self._buf[at + len(CALL_CLOSE) :]
            self._stream(out)
            self._close(out, closed=True)

    def finish(self, cut: bool = False) -> list[Piece]:
        """Whatever is held when the choice ends; `cut`: it ran out of tokens, so a call
        begun and not yet named is a cut call, not text (no call markup in content)."""
        out: list[Piece] = []
        if self._in_call:
            self._body += self._buf
            self._stream(out)
            if cut and self._open is None:
                self._in_call = False
            else:
                self._close(out, closed=False)
        elif self._bare:
            calls = self._parse(self._buf)
            if calls is None:
                self._content(out, self._buf)
            else:
                self._announce_whole(out, calls)
        else:
            self._content(out, self._buf)
        self._buf = ""
        return out

    def _content(self, out: list[Piece], text: str) -> None:
        if self.calls and not text.strip():
            self._gap += text
        elif text:
            out.append(self._gap + text)
            self._gap = ""

    def _stream(self, out: list[Piece]) -> None:
        if self._open is None:
            match = _HEAD.match(self._body)
            if match is None:
                return
            try:
                name = json.loads(f'"{match.group(1)}"')
            except ValueError:
                return
            if name not in self._names:
                return
            self._open = ToolCall(id=self._make_id(), name=name, arguments="")
            self._args_at = match.end()
            self._scanner = _ObjectScanner()
            out.append(ToolCallDelta(call=len(self.calls), id=self._open.id, name=name))
        if self._scanner.done:
            return
        rest = self._body[self._args_at :]
        used = self._scanner.feed(rest)
        if used:
            piece = rest[:used]
            self._args_at += used
            self._open = ToolCall(self._open.id, self._open.name, self._open.arguments + piece)
            out.append(ToolCallDelta(call=len(self.calls), arguments=piece))

    def _close(self, out: list[Piece], closed: bool) -> None:
        self._in_call = False
        if self._open is not None:
            self.calls.append(self._open)
            self._open = None
            return
        calls = self._parse(self._body)
        if calls is None:
            tail = CALL_CLOSE if closed else ""
            self._content(out, f"{CALL_OPEN}{self._body}{tail}")
        else:
            self._announce_whole(out, calls)

    def _announce_whole(self, out: list[Piece], calls: list[tuple[str, str]]) -> None:
        for name, arguments in calls:
            call = ToolCall(id=self._make_id(), name=name, arguments=arguments)
            position = len(self.calls)
            out.append(ToolCallDelta(call=position, id=call.id, name=name))
            out.append(ToolCallDelta(call=position, arguments=arguments))
            self.calls.append(call)

    def _parse(self, text: str) -> list[tuple[str, str]] | None:
        """(name, arguments JSON) of each call `text` holds, or None if it is not calls."""
        try:
            value: Any = json.loads(text)
        except ValueError:
            return None
        items = value if isinstance(value, list) else [value]
        calls = []
        for item in items:
            if not isinstance(item, dict) or item.get("name") not in self._names:
                return None
            arguments = item.get("arguments", item.get("parameters", {}))
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    return None
            if not isinstance(arguments, dict):
                return None
            calls.append((item["name"], json.dumps(arguments, ensure_ascii=False)))
        return calls or None
