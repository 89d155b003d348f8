"""Numeric JSON-schema keywords as grammar rules: minimum, maximum, exclusiveMinimum,
exclusiveMaximum and multipleOf, on integers and numbers.

Every admitted value is written in plain decimal, without an exponent. A value with
`frac` fraction digits is the digit string of value * 10**frac with a "." before its last
`frac` digits, so one construction serves integers and decimals alike: the rules walk
that digit string from the left, tracking how much of each bound is still tight and which
remainder multipleOf still needs. A state that no digit string can complete is never
written, so sampling under the grammar cannot get stuck half-way through a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

# As many digits as the converter's own integers allow.
INTEGER_DIGITS = 16
# A double tells apart any two decimals of up to 15 significant digits, so a written
# number compares with a bound as it parsed: strict bounds hold once parsed to a float.
NUMBER_DIGITS = 15
# Fraction digits offered for a bounded number unless its bounds need more.
FRACTION_DIGITS = 6
# Beyond this many rules (a large multipleOf over a wide range) the grammar gets too big
# to hand to llama.cpp per request.
MAX_RULES = 1500

AddRule = Callable[[str, str], str]


class NumericError(ValueError):
    """A numeric keyword that cannot be enforced, or bounds no value satisfies."""


def exact(value: Any, keyword: str) -> Fraction:
    """The decimal a JSON number was written as (a float by its shortest repr, which
    parses back to the same float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NumericError(f"'{keyword}' must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NumericError(f"'{keyword}' must be a finite number")
        return Fraction(Decimal(repr(value)))
    return Fraction(value)


def _decimals(q: Fraction) -> int:
    d = 0
    while (q * 10**d).denominator != 1:
        d += 1
    return d


class _Digits:
    """Rules for the digit strings of one `frac` whose value is a multiple of `k`."""

    def __init__(self, add_rule: AddRule, name: str, k: int, frac: int) -> None:
        self._add_rule, self._name, self._k, self._frac = add_rule, name, k, frac
        self._memo: dict[tuple[int, str | None, str | None, int], str | None] = {}

    @property
    def rules(self) -> int:
        return len(self._memo)

    def _free(self, n: int) -> str:
        """Any n digits (with the "." where it falls)."""
        if n > self._frac > 0:
            return f'[0-9]{{{n - self._frac}}} "." [0-9]{{{self._frac}}}'
        return f"[0-9]{{{n}}}"

    def _possible(self, n: int, lo: str | None, hi: str | None, t: int) -> bool:
        """Whether some n-digit string in [lo, hi] leaves remainder t modulo k."""
        low = int(lo) if lo else 0
        high = int(hi) if hi else 10**n - 1
        return low + (t - low) % self._k <= high

    def state(self, n: int, lo: str | None, hi: str | None, t: int) -> str | None:
        """The n-digit strings between the n-digit bounds lo and hi (None: unbounded)
        whose value is t modulo k, as a grammar expression; None if there are none.
        "" is the empty string."""
        if lo is not None and lo.strip("0") == "":
            lo = None
        if hi is not None and hi.strip("9") == "":
            hi = None
        if not self._possible(n, lo, hi, t):
            return None
        if n == 0:
            return ""
        if lo is None and hi is None and self._k == 1:
            return self._free(n)
        key = (n, lo, hi, t)
        if key in self._memo:
            return self._memo[key]
        # Consecutive digits that lead to the same rest share one alternative.
        groups: list[tuple[int, int, str]] = []
        for d in range(int(lo[0]) if lo else 0, int(hi[0]) + 1 if hi else 10):
            rest = self.state(
                n - 1,
                lo[1:] if lo and d == int(lo[0]) else None,
                hi[1:] if hi and d == int(hi[0]) else None,
                (t - d * pow(10, n - 1, self._k)) % self._k,
            )
            if rest is None:
                continue
            if groups and groups[-1][1] == d - 1 and groups[-1][2] == rest:
                groups[-1] = (groups[-1][0], d, rest)
            else:
                groups.append((d, d, rest))
        dot = ' "."' if n - 1 == self._frac > 0 else ""
        body = " | ".join(f"[{a}-{b}]{dot}{' ' + rest if rest else ''}" for a, b, rest in groups)
        if len(self._memo) >= MAX_RULES:
            raise NumericError("it would need too large a grammar; narrow the range")
        rule = self._add_rule(f"{self._name}-n{len(self._memo)}", body)
        self._memo[key] = rule
        return rule

    def unsigned(self, lo: int, hi: int) -> list[str]:
        """Alternatives writing every multiple of k in [lo, hi] (0 <= lo), each once."""
        alts: list[str] = []
        free: list[int] = []  # lengths admitting every string of theirs (k == 1)
        first = max(len(str(lo)), self._frac + 1)
        for length in range(first, max(len(str(hi)), self._frac + 1) + 1):
            # a leading zero only as the units digit of "0.xx"
            smallest = 0 if length == self._frac + 1 else 10 ** (length - 1)
            a, b = max(lo, smallest), min(hi, 10**length - 1)
            if a > b:
                continue
            if self._k == 1 and smallest > 0 and a == smallest and b == 10**length - 1:
                free.append(length)
                continue
            expr = self.state(length, str(a).zfill(length), str(b).zfill(length), 0)
            if expr is not None:
                alts.append(expr)
        if free:  # consecutive lengths: one alternative, not one stack per length
            low, high = free[0] - self._frac - 1, free[-1] - self._frac - 1
            tail = f' "." [0-9]{{{self._frac}}}' if self._frac else ""
            more = f" [0-9]{{{low},{high}}}" if high else ""
            alts.append(f"[1-9]{more}{tail}")
        return alts

    def signed(self, lo: int, hi: int) -> list[str]:
        alts = self.unsigned(max(lo, 0), hi) if hi >= 0 else []
        if lo < 0:  # never "-0"
            negative = self.unsigned(max(1, -hi), -lo)
            if negative:
                alts.append('"-" (' + " | ".join(negative) + ")")
        return alts


def _bounds(
    schema: dict[str, Any],
) -> tuple[list[tuple[Fraction, bool]], list[tuple[Fraction, bool]]]:
    lower = [
        (exact(schema[k], k), k.startswith("exclusive"))
        for k in ("minimum", "exclusiveMinimum")
        if k in schema
    ]
    upper = [
        (exact(schema[k], k), k.startswith("exclusive"))
        for k in ("maximum", "exclusiveMaximum")
        if k in schema
    ]
    for low, low_strict in lower:
        for high, high_strict in upper:
            if low > high or (low == high and (low_strict or high_strict)):
                raise NumericError(f"no value lies between the bounds {low} and {high}")
    return lower, upper


def _scaled(
    lower: list[tuple[Fraction, bool]], upper: list[tuple[Fraction, bool]], frac: int, digits: int
) -> tuple[int, int]:
    """The bounds on value * 10**frac, within `digits` digits."""
    scale, cap = 10**frac, 10**digits - 1
    lo = max([-cap] + [math.floor(v * scale) + 1 if s else math.ceil(v * scale) for v, s in lower])
    hi = min([cap] + [math.ceil(v * scale) - 1 if s else math.floor(v * scale) for v, s in upper])
    return lo, hi


def numeric_rule(add_rule: AddRule, name: str, schema: dict[str, Any]) -> str:
    """The body of a rule admitting exactly the integers or numbers (by `schema["type"]`)
    that satisfy the schema's numeric keywords (followed by the converter's `space`)."""
    lower, upper = _bounds(schema)
    integer = schema.get("type") == "integer"
    fracs: list[int]
    if "multipleOf" in schema:
        step = exact(schema["multipleOf"], "multipleOf")
        if step <= 0:
            raise NumericError("'multipleOf' must be greater than 0")
        if integer:  # an integer is a multiple of p/q (lowest terms) when p divides it
            fracs, k = [0], step.numerator
        else:  # every multiple of a d-decimal step has (at most) d decimals
            d = _decimals(step)
            fracs, k = [d], int(step * 10**d)
    elif integer:
        fracs, k = [0], 1
    else:
        needed = max([_decimals(v) for v, _ in lower + upper] + [FRACTION_DIGITS])
        fracs, k = list(range(min(needed, NUMBER_DIGITS - 1) + 1)), 1
    alts: list[str] = []
    rules = 0
    for frac in fracs:
        if frac >= NUMBER_DIGITS:
            raise NumericError(f"it needs more than {NUMBER_DIGITS} digits")
        lo, hi = _scaled(lower, upper, frac, INTEGER_DIGITS if integer else NUMBER_DIGITS)
        digits = _Digits(add_rule, f"{name}-f{frac}" if len(fracs) > 1 else name, k, frac)
        if lo <= hi:
            alts += digits.signed(lo, hi)
        rules += digits.rules
        if rules > MAX_RULES:
            raise NumericError("it would need too large a grammar; narrow the range")
    if not alts:
        raise NumericError(
            "no value the grammar can write satisfies it "
            f"(at most {INTEGER_DIGITS if integer else NUMBER_DIGITS} digits)"
        )
    return "(" + " | ".join(alts) + ") space"
