"""Output comparators, as competitive-programming judges compare.

`stdout_matches` (stdin/stdout tests): line endings normalised, every line stripped, trailing blank
lines ignored; two lines match when equal, or when they have the same number of whitespace-separated
tokens and every token pair matches. Two number tokens match when

- both are integers: only when equal as written (``10000`` never matches ``10001``, nor ``010000``);
- one is an integer and the other is written as a float (``.``/exponent): only when the float is
  integral and equal to it, compared exactly as decimals (``1000000.0`` matches ``1000000``;
  ``1000001.0``, ``3.000001`` and ``1e+18`` for ``999999999999999999`` do not);
- both are floats: within ``|a - b| <= max(rel_tol * |b|, abs_tol)``.

``mode="tokens"`` ignores line structure (testlib's ``wcmp``): the two whole outputs are compared token
by token. Exact comparisons use `decimal.Decimal`, which parses a token in linear time and never
expands an exponent (``1e999999999`` costs what its text costs).

`values_match` (call-based tests): structural equality of JSON values with the same number rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

CompareMode = Literal["lines", "tokens"]
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FLOATISH = re.compile(r"[.eE]")


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How two outputs are compared."""

    rel_tol: float = 1e-6
    abs_tol: float = 1e-6
    case_insensitive: bool = False
    mode: CompareMode = "lines"


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _numbers_close(a: float, b: float, tol: Tolerance) -> bool:
    if math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= max(tol.rel_tol * abs(b), tol.abs_tol)


def _exactly_equal(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return False


def tokens_match(got: str, expected: str, tol: Tolerance) -> bool:
    """Equal tokens, or numbers that match under the rules of the module docstring."""
    if got == expected or (tol.case_insensitive and got.casefold() == expected.casefold()):
        return True
    if not (_NUMBER.fullmatch(got) and _NUMBER.fullmatch(expected)):
        return False
    got_float, expected_float = bool(_FLOATISH.search(got)), bool(_FLOATISH.search(expected))
    if not (got_float or expected_float):
        return False  # two integers: exact only
    if got_float != expected_float:
        return _exactly_equal(got, expected)  # an integer against a float: the float must be that integer
    return _numbers_close(float(got), float(expected), tol)


def _token_lists_match(got: list[str], expected: list[str], tol: Tolerance) -> bool:
    return len(got) == len(expected) and all(tokens_match(g, e, tol) for g, e in zip(got, expected))


def first_mismatch(got: str, expected: str, tol: Tolerance) -> tuple[int, str, str] | None:
    """None when the outputs match; else (line number from 0, expected line, got line).

    In ``tokens`` mode the "line" is the index of the first differing token.
    """
    if tol.mode == "tokens":
        got_tokens, exp_tokens = got.split(), expected.split()
        for i in range(max(len(got_tokens), len(exp_tokens))):
            g = got_tokens[i] if i < len(got_tokens) else "<end of output>"
            e = exp_tokens[i] if i < len(exp_tokens) else "<end of output>"
            if i >= len(got_tokens) or i >= len(exp_tokens) or not tokens_match(g, e, tol):
                return i, e, g
        return None
    got_lines, exp_lines = _lines(got), _lines(expected)
    for i in range(max(len(got_lines), len(exp_lines))):
        g = got_lines[i] if i < len(got_lines) else "<end of output>"
        e = exp_lines[i] if i < len(exp_lines) else "<end of output>"
        if i >= len(got_lines) or i >= len(exp_lines):
            return i, e, g
        if g == e or (tol.case_insensitive and g.casefold() == e.casefold()):
            continue
        if not _token_lists_match(g.split(), e.split(), tol):
            return i, e, g
    return None


def stdout_matches(got: str, expected: str, tol: Tolerance) -> bool:
    """Does a program's stdout match the expected output (see the module docstring)?"""
    return first_mismatch(got, expected, tol) is None


def values_match(got: Any, expected: Any, tol: Tolerance) -> bool:
    """Structural equality of JSON-like values; numbers (not bools) compared with the tolerance."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        if isinstance(got, int) or isinstance(expected, int):
            return got == expected  # exact: Python compares an int with a float without rounding
        return _numbers_close(got, expected, tol)
    if isinstance(got, str) and isinstance(expected, str):
        return got == expected or (tol.case_insensitive and got.casefold() == expected.casefold())
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(values_match(g, e, tol) for g, e in zip(got, expected))
    if isinstance(got, Mapping) and isinstance(expected, Mapping):
        return got.keys() == expected.keys() and all(values_match(got[k], expected[k], tol) for k in got)
    return got == expected


def call_result_matches(got: Any, expected: Any, tol: Tolerance) -> bool:
    """`values_match`, also accepting APPS/TACO's habit of wrapping a call's expected value in a list."""
    if values_match(got, expected, tol):
        return True
    return isinstance(expected, list) and len(expected) == 1 and values_match(got, expected[0], tol)
