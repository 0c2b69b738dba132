"""Length checkers: sentences, words and paragraphs."""

from __future__ import annotations

import re

from .params import Checker, Param, compare
from .text import Doc, count_words, strip_edge_punctuation

# IFEval's "***" paragraph divider, with at most one whitespace character on each side.
_DIVIDER_RE = re.compile(r"\s?\*\*\*\s?")


def count_paragraphs(pieces: list[str]) -> int | None:
    """Number of paragraphs among `pieces` split at a divider, or None when one is empty inside.

    Empty pieces are allowed only at the two ends (a divider at the very start or end); an empty piece
    between two dividers means a doubled divider, which IFEval counts as a failure.
    """
    count = len(pieces)
    for index, piece in enumerate(pieces):
        if not piece.strip():
            if index in (0, len(pieces) - 1):
                count -= 1
            else:
                return None
    return count


def divider_paragraphs(text: str) -> list[str]:
    """`text` split at IFEval's markdown divider ``***``."""
    return _DIVIDER_RE.split(text)


def number_sentences(doc: Doc, *, num_sentences: int, relation: str) -> bool:
    """length_constraints:number_sentences: sentence count vs `num_sentences`."""
    return compare(len(doc.sentence_spans), relation, num_sentences)


def number_words(doc: Doc, *, num_words: int, relation: str) -> bool:
    """length_constraints:number_words: ``\\w+`` run count vs `num_words`."""
    return compare(count_words(doc.text), relation, num_words)


def number_paragraphs(doc: Doc, *, num_paragraphs: int) -> bool:
    """length_constraints:number_paragraphs: exactly `num_paragraphs` paragraphs split by ``***``."""
    return count_paragraphs(divider_paragraphs(doc.text)) == num_paragraphs


def two_divider_paragraphs(doc: Doc) -> bool:
    """paragraphs:paragraphs: exactly two paragraphs split by ``***``."""
    return count_paragraphs(divider_paragraphs(doc.text)) == 2


def two_blank_line_paragraphs(doc: Doc) -> bool:
    """paragraphs:paragraphs2: exactly two paragraphs separated by two line breaks (``\\n\\n``)."""
    return count_paragraphs(doc.text.split("\n\n")) == 2


def nth_paragraph_first_word(doc: Doc, *, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    """length_constraints:nth_paragraph_first_word: `num_paragraphs` paragraphs split by ``\\n\\n`` and
    the `nth_paragraph`-th (1-based, among non-empty ones) starts with `first_word`.

    The first word is compared without case and without surrounding punctuation or quotes.
    """
    paragraphs = [p.strip() for p in doc.text.split("\n\n") if p.strip()]
    if len(paragraphs) != num_paragraphs or nth_paragraph > len(paragraphs):
        return False
    first = strip_edge_punctuation(paragraphs[nth_paragraph - 1].split()[0])
    return first.lower() == strip_edge_punctuation(first_word).lower()


CHECKERS: dict[str, Checker] = {
    "length_constraints:number_sentences": Checker(
        number_sentences, (Param("num_sentences", "count"), Param("relation", "relation"))
    ),
    "length_constraints:number_words": Checker(
        number_words, (Param("num_words", "count"), Param("relation", "relation"))
    ),
    "length_constraints:number_paragraphs": Checker(number_paragraphs, (Param("num_paragraphs", "positive"),)),
    "length_constraints:nth_paragraph_first_word": Checker(
        nth_paragraph_first_word,
        (Param("num_paragraphs", "positive"), Param("nth_paragraph", "positive"), Param("first_word", "word")),
    ),
    "paragraphs:paragraphs": Checker(two_divider_paragraphs),
    "paragraphs:paragraphs2": Checker(two_blank_line_paragraphs),
}
