"""Counting checkers: lowercase words, unique words, keyword increments, composition."""

from __future__ import annotations

import re

from .keywords import occurrences
from .length import count_paragraphs
from .params import Checker, Param
from .text import Doc

_LOWERCASE_WORD_RE = re.compile(r"\b[a-z]+\b")
# The prompt asks for "* * *"; IFEvalG split at "***" only. Both are accepted.
_COMPOSITION_DIVIDER_RE = re.compile(r"\*[ \t]?\*[ \t]?\*")


def lowercase_counting(doc: Doc, *, N: int) -> bool:
    """count:lowercase_counting: at most `N` words made only of lowercase letters a-z, in total."""
    return sum(1 for _ in _LOWERCASE_WORD_RE.finditer(doc.text)) <= N


def count_unique(doc: Doc) -> bool:
    """count:count_unique: no word is used twice (case-insensitive; punctuation is not a word)."""
    words = doc.words
    return len(words) == len(set(map(str.lower, words)))


def count_increment_word(doc: Doc, *, keyword1: str, keyword2: str) -> bool:
    """count:count_increment_word: `keyword1` appears exactly once and `keyword2` exactly twice."""
    return occurrences(doc.text, keyword1) == 1 and occurrences(doc.text, keyword2) == 2


def counting_composition(doc: Doc, *, n_sent: int, n_words: int) -> bool:
    """count:counting_composition: 3 paragraphs split by ``* * *`` (or ``***``), each with exactly
    `n_sent` sentences of exactly `n_words` words.

    Words are word tokens (IFEvalG counted NLTK tokens, so a sentence's final period was a "word" and
    no properly punctuated answer could pass); an empty piece inside (a doubled divider) fails.
    """
    pieces = _COMPOSITION_DIVIDER_RE.split(doc.text)
    if count_paragraphs(pieces) != 3:
        return False
    for paragraph in (p for p in pieces if p.strip()):
        sentences = Doc(paragraph).sentences
        if len(sentences) != n_sent:
            return False
        if any(len(Doc(sentence).words) != n_words for sentence in sentences):
            return False
    return True


CHECKERS: dict[str, Checker] = {
    "count:lowercase_counting": Checker(lowercase_counting, (Param("N", "count"),)),
    "count:count_unique": Checker(count_unique),
    "count:count_increment_word": Checker(
        count_increment_word, (Param("keyword1", "text"), Param("keyword2", "text"))
    ),
    "count:counting_composition": Checker(
        counting_composition, (Param("n_sent", "positive"), Param("n_words", "positive"))
    ),
}
