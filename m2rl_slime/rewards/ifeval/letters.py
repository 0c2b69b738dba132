"""Letter and punctuation checkers."""

from __future__ import annotations

import re

from .params import Checker, Param, compare
from .text import Doc

_ASCII_LETTER_RE = re.compile(r"[a-zA-Z]")


def letter_frequency(doc: Doc, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    """keywords:letter_frequency / letters:letter_counting2: occurrences of `letter` (any case) vs
    `let_frequency`."""
    return compare(doc.lower.count(letter), let_relation, let_frequency)


def letter_counting(doc: Doc, *, N: int, relation: str) -> bool:
    """letters:letter_counting: number of ASCII letters in the response vs `N`."""
    return compare(sum(1 for _ in _ASCII_LETTER_RE.finditer(doc.text)), relation, N)


def no_comma(doc: Doc) -> bool:
    """punctuation:no_comma: no ``,`` anywhere."""
    return "," not in doc.text


def no_dot(doc: Doc) -> bool:
    """punctuation:punctuation_dot: no ``.`` anywhere."""
    return "." not in doc.text


def no_exclamation(doc: Doc) -> bool:
    """punctuation:punctuation_exclamation: no ``!`` anywhere."""
    return "!" not in doc.text


_LETTER_FREQUENCY_PARAMS = (
    Param("letter", "letter"),
    Param("let_frequency", "count"),
    Param("let_relation", "relation"),
)

CHECKERS: dict[str, Checker] = {
    "keywords:letter_frequency": Checker(letter_frequency, _LETTER_FREQUENCY_PARAMS),
    "letters:letter_counting2": Checker(letter_frequency, _LETTER_FREQUENCY_PARAMS),
    "letters:letter_counting": Checker(letter_counting, (Param("N", "count"), Param("relation", "relation"))),
    "punctuation:no_comma": Checker(no_comma),
    "punctuation:punctuation_dot": Checker(no_dot),
    "punctuation:punctuation_exclamation": Checker(no_exclamation),
}
