"""Gold labels of any type as answer text, through one path (not a slime hook).

Datasets carry golds as strings, Python or numpy integers, floats, `Decimal` or `Fraction`. `label_text`
turns any of them into the answer string the math verifier compares:

- integers of any size are written in full (`10**5000` -> 5001 digits; Python's `str()` refuses more than
  4300 digits); beyond `MAX_LABEL_DIGITS` digits the label overflows and is a `LabelError`;
- floats and decimals are written exactly, in positional notation, from their shortest round-trip form
  (`1e-05` -> `0.00001`, `1e20` -> `100000000000000000000`, `2.0` -> `2`); NaN and infinities are errors;
- fractions become `\\frac{p}{q}`;
- `None`, booleans, empty strings, lists (alternatives or several values?), mappings and anything else
  are errors.
"""

from __future__ import annotations

import numbers
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from ..errors import LabelError

MAX_LABEL_DIGITS = 100_000
_LOG10_2 = 0.30102999566398120
_SAFE_BITS = 2000  # below Python's smallest allowed `int_max_str_digits` (640 digits)


def int_text(value: int) -> str:
    """The decimal digits of an integer of any size (up to `MAX_LABEL_DIGITS`), without `str()`'s digit limit."""
    if value.bit_length() * _LOG10_2 > MAX_LABEL_DIGITS:
        raise LabelError(f"integer label overflows: about {int(value.bit_length() * _LOG10_2)} digits")
    return _digits(value)


def _digits(value: int) -> str:
    if value < 0:
        return "-" + _digits(-value)
    if value.bit_length() <= _SAFE_BITS:
        return str(value)
    half = int(value.bit_length() * _LOG10_2) // 2
    high, low = divmod(value, 10**half)
    return _digits(high) + _digits(low).rjust(half, "0")


def decimal_text(value: Decimal) -> str:
    """A finite decimal in positional notation, without trailing zeros (`1E+2` -> `100`, `2.50` -> `2.5`)."""
    if not value.is_finite():
        raise LabelError(f"numeric label is not finite: {value}")
    if abs(value.adjusted()) > MAX_LABEL_DIGITS:
        raise LabelError(f"numeric label overflows: exponent {value.adjusted()}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def scalar_text(value: Any) -> str:
    """The answer text of one scalar label (see the module docstring); raises `LabelError`."""
    if value is None or isinstance(value, bool):
        raise LabelError(f"math label must be a non-empty string or a number, got {value!r}")
    if isinstance(value, str):
        if not value.strip():
            raise LabelError("math label is an empty string")
        return value
    if isinstance(value, numbers.Integral):
        return int_text(int(value))
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return int_text(value.numerator)
        sign = "-" if value < 0 else ""
        return f"{sign}\\frac{{{int_text(abs(value.numerator))}}}{{{int_text(value.denominator)}}}"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, numbers.Real):
        try:  # str() is the shortest round-trip form, for Python and numpy floats alike
            return decimal_text(Decimal(str(value)))
        except InvalidOperation:
            raise LabelError(f"numeric label {value!r} has no decimal form") from None
    raise LabelError(f"math label must be a string, a number or a list of them, got {type(value).__name__}")


def label_text(label: Any) -> str:
    """The gold answer text of a label; raises `LabelError` for an unusable one.

    A list or tuple is refused: it could mean alternatives ("any of these") or several values ("all of
    these"); a gold with several values is written as one string (`1, 2` or `\\boxed{1}, \\boxed{2}`).
    """
    if isinstance(label, (list, tuple)):
        raise LabelError(
            "math label is a list: write several values as one string ('1, 2' or '\\boxed{1}, \\boxed{2}')"
        )
    return scalar_text(label)
