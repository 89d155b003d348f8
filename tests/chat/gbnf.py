"""Test helpers for grammars: llama.cpp's own verdict on a string, and an independent
reading of GBNF that enumerates or samples the strings a grammar admits."""

from __future__ import annotations

import ctypes
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hearth.engine.llama_cpp.lib import llama
from hearth.engine.llama_cpp.model import LlamaModel
from hearth.engine.llama_cpp.sampling import _TOKEN_DATA, _candidates, grammar_sampler
from hearth.engine.types import Grammar


class LlamaAcceptor:
    """Whether llama.cpp's grammar sampler lets the model write exactly `text` and stop."""

    def __init__(self, model: LlamaModel) -> None:
        self.model = model

    def _allowed(self, sampler: object, token: int) -> bool:
        one = np.array([(token, 0.0, 0.0)], dtype=_TOKEN_DATA)
        llama.llama_sampler_apply(sampler, ctypes.byref(_candidates(one)))
        return bool(np.isfinite(one["logit"][0]))

    def accepts(self, gbnf: str, text: str) -> bool:
        sampler = grammar_sampler(self.model.vocab, Grammar(gbnf))
        try:
            # one character a token where the vocabulary has it, so every prefix is tried
            for token in self._tokens(text):
                if not self._allowed(sampler, token):
                    return False
                llama.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, self.model.eos_id)
        finally:
            llama.llama_sampler_free(sampler)

    def _tokens(self, text: str) -> list[int]:
        tokens: list[int] = []
        for ch in text:
            one = self.model.tokenize(ch, add_special=False, parse_special=False)
            tokens += one
        return tokens


# --- an independent GBNF reader (the subset the converters write) ---------------------


@dataclass
class Lit:
    text: str


@dataclass
class Cls:
    ranges: list[tuple[int, int]]
    negated: bool


@dataclass
class Ref:
    name: str


@dataclass
class Seq:
    items: list[object]


@dataclass
class Alt:
    options: list[Seq]


@dataclass
class Rep:
    item: object
    low: int
    high: int | None


_ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "]": "]", "[": "[", "-": "-"}


def _char(s: str, i: int) -> tuple[str, int]:
    if s[i] != "\\":
        return s[i], i + 1
    c = s[i + 1]
    width = {"x": 2, "u": 4, "U": 8}.get(c)
    if width:
        return chr(int(s[i + 2 : i + 2 + width], 16)), i + 2 + width
    return _ESC[c], i + 2


class _Parser:
    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def alt(self) -> Alt:
        options = [self.seq()]
        while self.i < len(self.s) and self.s[self.i] == "|":
            self.i += 1
            options.append(self.seq())
        return Alt(options)

    def seq(self) -> Seq:
        items: list[object] = []
        while True:
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] in "|)":
                return Seq(items)
            item = self.atom()
            self.ws()
            while self.i < len(self.s) and self.s[self.i] in "?*+{":
                c = self.s[self.i]
                if c == "{":
                    end = self.s.index("}", self.i)
                    low, _, high = self.s[self.i + 1 : end].partition(",")
                    top = (
                        int(low)
                        if "," not in self.s[self.i : end]
                        else (int(high) if high else None)
                    )
                    item, self.i = Rep(item, int(low), top), end + 1
                else:
                    item = Rep(item, 0 if c in "?*" else 1, 1 if c == "?" else None)
                    self.i += 1
                self.ws()
            items.append(item)

    def atom(self) -> object:
        c = self.s[self.i]
        if c == "(":
            self.i += 1
            inner = self.alt()
            assert self.s[self.i] == ")"
            self.i += 1
            return inner
        if c == '"':
            self.i += 1
            out = ""
            while self.s[self.i] != '"':
                ch, self.i = _char(self.s, self.i)
                out += ch
            self.i += 1
            return Lit(out)
        if c == "[":
            self.i += 1
            negated = self.s[self.i] == "^"
            self.i += negated
            ranges = []
            while self.s[self.i] != "]":
                lo, self.i = _char(self.s, self.i)
                hi = lo
                if self.s[self.i] == "-" and self.s[self.i + 1] != "]":
                    hi, self.i = _char(self.s, self.i + 1)
                ranges.append((ord(lo), ord(hi)))
            self.i += 1
            return Cls(ranges, negated)
        m = re.compile(r"[a-zA-Z0-9-]+").match(self.s, self.i)
        assert m, self.s[self.i :]
        self.i = m.end()
        return Ref(m.group())


class GBNF:
    """A grammar read independently of llama.cpp: its language enumerated or sampled."""

    def __init__(self, text: str) -> None:
        self.rules = {}
        for line in text.strip().splitlines():
            name, _, body = line.partition("::=")
            self.rules[name.strip()] = _Parser(body.strip()).alt()

    def strings(self, rule: str = "root", limit: int = 200_000) -> set[str]:
        """Every string of a finite grammar (fails past `limit`)."""
        out = set(itertools.islice(self._all(Ref(rule)), limit + 1))
        assert len(out) <= limit, "too many strings to enumerate"
        return out

    def _all(self, node: object) -> Iterator[str]:
        if isinstance(node, Lit):
            yield node.text
        elif isinstance(node, Cls):
            assert not node.negated, "a negated class is not enumerable"
            for lo, hi in node.ranges:
                yield from map(chr, range(lo, hi + 1))
        elif isinstance(node, Ref):
            yield from self._all(self.rules[node.name])
        elif isinstance(node, Alt):
            for option in node.options:
                yield from self._all(option)
        elif isinstance(node, Seq):
            yield from self._seq(node.items)
        elif isinstance(node, Rep):
            assert node.high is not None, "an unbounded repetition is not enumerable"
            for n in range(node.low, node.high + 1):
                yield from self._seq([node.item] * n)

    def _seq(self, items: list[object]) -> Iterator[str]:
        if not items:
            yield ""
            return
        for head in set(self._all(items[0])):
            for tail in self._seq(items[1:]):
                yield head + tail

    def sample(self, rng: random.Random, rule: str = "root") -> str:
        return self._one(Ref(rule), rng)

    def _one(self, node: object, rng: random.Random) -> str:
        if isinstance(node, Lit):
            return node.text
        if isinstance(node, Cls):
            if node.negated:
                pool = [
                    c for c in range(0x20, 0x7F) if not any(lo <= c <= hi for lo, hi in node.ranges)
                ]
                return chr(rng.choice(pool))
            lo, hi = rng.choice(node.ranges)
            return chr(rng.randint(lo, hi))
        if isinstance(node, Ref):
            return self._one(self.rules[node.name], rng)
        if isinstance(node, Alt):
            return self._one(rng.choice(node.options), rng)
        if isinstance(node, Seq):
            return "".join(self._one(item, rng) for item in node.items)
        assert isinstance(node, Rep)
        n = rng.randint(node.low, node.high if node.high is not None else node.low + 8)
        return "".join(self._one(node.item, rng) for _ in range(n))
