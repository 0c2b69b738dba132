"""Case and language checkers.

Language detection follows IFEval: when langdetect finds no usable features (digits or symbols
only), the language part counts as followed. The detector is deterministic (see `language`).
"""

from __future__ import annotations

from .language import language_matches
from .params import Checker, Param, compare
from .text import Doc


def response_language(doc: Doc, *, language: str) -> bool:
    """language:response_language: the detected language is `language` (``zh`` accepts zh-cn/zh-tw)."""
    detected = doc.language
    return detected is None or language_matches(detected, language)


def english_capital(doc: Doc) -> bool:
    """change_case:english_capital: all letters are capitals and the response is English."""
    if not doc.text.isupper():
        return False
    detected = doc.language
    return detected is None or detected == "en"


def english_lowercase(doc: Doc) -> bool:
    """change_case:english_lowercase: no capital letters and the response is English."""
    if not doc.text.islower():
        return False
    detected = doc.language
    return detected is None or detected == "en"


def capital_word_frequency(doc: Doc, *, capital_frequency: int, capital_relation: str) -> bool:
    """change_case:capital_word_frequency: number of ALL-CAPS word tokens vs `capital_frequency`."""
    capitals = sum(1 for token in doc.words if token.isupper())
    return compare(capitals, capital_relation, capital_frequency)


CHECKERS: dict[str, Checker] = {
    "language:response_language": Checker(response_language, (Param("language", "language"),), uses_language=True),
    "change_case:english_capital": Checker(english_capital, uses_language=True),
    "change_case:english_lowercase": Checker(english_lowercase, uses_language=True),
    "change_case:capital_word_frequency": Checker(
        capital_word_frequency, (Param("capital_frequency", "count"), Param("capital_relation", "relation"))
    ),
}
