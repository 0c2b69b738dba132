"""Keyword checkers: presence, absence, frequency and position of given words.

Keywords are matched literally (IFEval passes them to ``re`` unescaped, so "C++" raised and "a.b"
matched "axb"), case-insensitively, as substrings unless stated otherwise.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .params import Checker, Param, compare
from .text import Doc, strip_edge_punctuation


@lru_cache(maxsize=1024)
def _substring_re(keyword: str) -> re.Pattern[str]:
    return re.compile(re.escape(keyword), re.IGNORECASE)


@lru_cache(maxsize=1024)
def _whole_word_re(word: str) -> re.Pattern[str]:
    # Lookarounds rather than \b, so that words starting or ending with a symbol ("C++") still match.
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


def occurrences(text: str, keyword: str) -> int:
    """Non-overlapping, case-insensitive occurrences of `keyword` in `text` (IFEval's keyword count)."""
    return sum(1 for _ in _substring_re(keyword).finditer(text))


def existence(doc: Doc, *, keywords: tuple[str, ...]) -> bool:
    """keywords:existence: every keyword appears (case-insensitive substring)."""
    return all(_substring_re(k).search(doc.text) for k in keywords)


def frequency(doc: Doc, *, keyword: str, frequency: int, relation: str) -> bool:
    """keywords:frequency / keywords:word_count_different_numbers: keyword count vs `frequency`."""
    return compare(occurrences(doc.text, keyword), relation, frequency)


def forbidden_words(doc: Doc, *, forbidden_words: tuple[str, ...]) -> bool:
    """keywords:forbidden_words: none of the words appears as a whole word (case-insensitive)."""
    return not any(_whole_word_re(w).search(doc.text) for w in forbidden_words)


def word_once(doc: Doc, *, keyword: str) -> bool:
    """keywords:word_once: the keyword appears exactly once."""
    return occurrences(doc.text, keyword) == 1


def exclude_word_harder(doc: Doc, *, keyword: str) -> bool:
    """keywords:exclude_word_harder: the keyword never appears as a whole word, in any case.

    IFEvalG only looked for ``" keyword "`` with spaces on both sides, so "Keyword." or a line-initial
    occurrence passed; we close that gap.
    """
    return not _whole_word_re(keyword).search(doc.text)


def no_adjacent_consecutive(doc: Doc) -> bool:
    """keywords:no_adjacent_consecutive: no two adjacent words start with consecutive letters (a-b, ...).

    A word's first letter is its first character after leading punctuation; words that do not start
    with a letter a-z (digits, symbols) never form a consecutive pair.
    """
    previous = ""
    for chunk in doc.split:
        stripped = strip_edge_punctuation(chunk)
        first = stripped[:1].lower()
        if not ("a" <= first <= "z"):
            previous = ""
            continue
        if previous and ord(first) - ord(previous) == 1:
            return False
        previous = first
    return True


def palindrome(doc: Doc) -> bool:
    """keywords:palindrome: some word of 3+ letters/digits reads the same backwards ("level", "Anna").

    IFEvalG accepted any whitespace chunk equal to its reverse, so "a", "I" or "-" satisfied it; we
    ignore case and edge punctuation and require at least three characters.
    """
    for chunk in doc.split:
        word = "".join(ch for ch in chunk.lower() if ch.isalnum())
        if len(word) >= 3 and word == word[::-1]:
            return True
    return False


def keyword_specific_position(doc: Doc, *, keyword: str, n: int, m: int) -> bool:
    """keywords:keyword_specific_position: the m-th word of the n-th sentence is the keyword.

    Words are word tokens (punctuation is not a word); the comparison ignores case.
    """
    sentences = doc.sentences
    if len(sentences) < n:
        return False
    words = Doc(sentences[n - 1]).words
    if len(words) < m:
        return False
    return words[m - 1].lower() == keyword.lower()


def start_end(doc: Doc) -> bool:
    """keywords:start_end: the first and last tokens are the same word (punctuation is a token)."""
    tokens = doc.tokens
    return len(tokens) >= 2 and tokens[0].lower() == tokens[-1].lower()


CHECKERS: dict[str, Checker] = {
    "keywords:existence": Checker(existence, (Param("keywords", "words"),)),
    "keywords:frequency": Checker(
        frequency, (Param("keyword", "text"), Param("frequency", "count"), Param("relation", "relation"))
    ),
    "keywords:forbidden_words": Checker(forbidden_words, (Param("forbidden_words", "words"),)),
    "keywords:word_once": Checker(word_once, (Param("keyword", "text"),)),
    "keywords:word_count_different_numbers": Checker(
        frequency, (Param("keyword", "text"), Param("frequency", "count"), Param("relation", "relation"))
    ),
    "keywords:exclude_word_harder": Checker(
        exclude_word_harder, (Param("keyword", "text"), Param("instruction", "ignored", required=False))
    ),
    "keywords:no_adjacent_consecutive": Checker(no_adjacent_consecutive),
    "keywords:palindrome": Checker(palindrome),
    "keywords:keyword_specific_position": Checker(
        keyword_specific_position, (Param("keyword", "word"), Param("n", "positive"), Param("m", "positive"))
    ),
    "keywords:start_end": Checker(start_end),
}
