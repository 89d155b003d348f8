r"""Patterns made safe to write between JSON quotes.

llama.cpp's regex-to-grammar writes a pattern's characters as they are, but a string's
characters go between JSON quotes unescaped: a quote, a backslash or a control character
there would break the JSON. Character classes (and its `dot`) are narrowed to the
characters JSON allows as they are; a literal quote or backslash is refused.

It also copies an escape outside a class into a grammar literal as it is (`"\."`, which
GBNF does not read, and `a\.+` repeats the whole literal), so `grammar_regex` first
writes each such escape as a class of the characters it stands for.
"""

from __future__ import annotations

import re

# What JSON writes escaped: control characters, quote, backslash (and DEL, as `char` does).
_UNSAFE = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F)]
# Escapes of a letter that stand for one character; any other escaped punctuation stands
# for itself.
_CHAR_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "v": 0x0B}
_HEX_WIDTHS = {"x": 2, "u": 4, "U": 8}
# ECMA-262's (JSON Schema's) \d, \w and \s, as class items.
_SHORTHANDS = {
    "d": "0-9",
    "w": "a-zA-Z0-9_",
    "s": "\\x09-\\x0D\\x20\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF",
}
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[^"\[]+')


def _class_char(text: str, i: int) -> tuple[int, int]:
    """The code point of the class item at text[i] and the index after it."""
    if text[i] != "\\":
        return ord(text[i]), i + 1
    c = text[i + 1]
    width = _HEX_WIDTHS.get(c)
    if width:
        return int(text[i + 2 : i + 2 + width], 16), i + 2 + width
    if c in _CHAR_ESCAPES:
        return _CHAR_ESCAPES[c], i + 2
    if c.isascii() and c.isalnum():
        raise ValueError(f"unsupported escape \\{c} in a pattern's character class")
    return ord(c), i + 2


def _unsafe(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _UNSAFE)


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


def _escape(pattern: str, i: int) -> tuple[str, int]:
    """The escape at pattern[i] (outside a class) as a class, and the index after it."""
    c = pattern[i + 1]
    if c.lower() in _SHORTHANDS:
        return f"[{'^' if c.isupper() else ''}{_SHORTHANDS[c.lower()]}]", i + 2
    if c.isascii() and c.isalnum() and c not in _HEX_WIDTHS and c not in _CHAR_ESCAPES:
        # \b, a backreference, \A, \Z, \p{…}: nothing a grammar can hold to
        raise ValueError(f"the escape \\{c} cannot be enforced")
    code, end = _class_char(pattern, i)
    if _unsafe(code):
        raise ValueError(f"it writes a character JSON would escape ({chr(code)!r})")
    return f"[\\U{code:08X}]", end


def grammar_regex(pattern: str) -> str:
    """`pattern`, a regular expression that compiles, as llama.cpp's regex-to-grammar
    reads it right, for a whole match: a JSON Schema pattern searches, and a string that
    matches the whole of it matches too, so an anchor at either end of an alternative of the
    whole goes; one elsewhere is refused (the converter would write it as a character)."""
    out: list[str] = []
    i, depth, alternative = 0, 0, 0  # alternative: where in `out` the current one begins
    while i < len(pattern):
        c = pattern[i]
        if c == "[":  # classes are the converter's, made JSON-safe by `json_safe`
            end = i + 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        if c == "\\":
            piece, i = _escape(pattern, i)
            out.append(piece)
            continue
        if c == "^" and not (depth == 0 and len(out) == alternative):
            raise ValueError("an anchor ^ inside it cannot be enforced")
        if c == "$" and not (depth == 0 and pattern[i + 1 : i + 2] in {"", "|"}):
            raise ValueError("an anchor $ inside it cannot be enforced")
        if _unsafe(ord(c)):
            raise ValueError(f"it writes a character JSON would escape ({c!r})")
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c not in "^$":
            out.append(c)
        if c == "|" and depth == 0:
            alternative = len(out)
        i += 1
    return "".join(out)
