"""Patterns made safe to write between JSON quotes.

llama.cpp's regex-to-grammar writes a pattern's characters as they are, but a string's
characters go between JSON quotes unescaped: a quote, a backslash or a control character
there would break the JSON. Character classes (and its `dot`) are narrowed to the
characters JSON allows as they are; a literal quote or backslash is refused.
"""

from __future__ import annotations

import re

# What JSON writes escaped: control characters, quote, backslash (and DEL, as `char` does).
_UNSAFE = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F)]
_CLASS_ESCAPES = {
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "\\": 0x5C,
    "]": 0x5D,
    "[": 0x5B,
    "-": 0x2D,
    "^": 0x5E,
}
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[^"\[]+')


def _class_char(text: str, i: int) -> tuple[int, int]:
    """The code point of the class item at text[i] and the index after it."""
    if text[i] != "\\":
        return ord(text[i]), i + 1
    c = text[i + 1]
    width = {"x": 2, "u": 4, "U": 8}.get(c)
    if width:
        return int(text[i + 2 : i + 2 + width], 16), i + 2 + width
    if c not in _CLASS_ESCAPES:
        raise ValueError(f"unsupported escape \\{c} in a pattern's character class")
    return _CLASS_ESCAPES[c], i + 2


def _safe_class(token: str) -> str:
    negated = token.startswith("[^")
    text, ranges, i = token[2 if negated else 1 : -1], [], 0
    while i < len(text):
        lo, i = _class_char(text, i)
        hi = lo
        if i + 1 < len(text) and text[i] == "-":
            hi, i = _class_char(text, i + 1)
        ranges.append((lo, hi))
    if negated:
        ranges += _UNSAFE
    else:
        for bad_lo, bad_hi in _UNSAFE:
            ranges = [
                part
                for lo, hi in ranges
                for part in ((lo, min(hi, bad_lo - 1)), (max(lo, bad_hi + 1), hi))
                if part[0] <= part[1]
            ]
        if not ranges:
            raise ValueError("a character class of the pattern admits only characters JSON escapes")
    items = "".join(f"\\U{lo:08X}" + (f"-\\U{hi:08X}" if hi != lo else "") for lo, hi in ranges)
    return f"[{'^' if negated else ''}{items}]"


# The JSON quotes the converter puts around a pattern string (its own, kept).
OPEN, CLOSE = '"\\"" ', ' "\\"" space'


def json_safe(body: str, pattern: str) -> str:
    out = []
    for token in _TOKEN.findall(body):
        if token.startswith('"') and ("\\" in token[1:-1] or '"' in token[1:-1]):
            raise ValueError(f"pattern {pattern!r} writes a character JSON would escape")
        out.append(_safe_class(token) if token.startswith("[") else token)
    return "".join(out)
