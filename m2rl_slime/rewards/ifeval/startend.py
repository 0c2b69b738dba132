"""Start/end checkers: the response's or each sentence's first and last word, end phrase, quotes.

A "word" here is the first (or last) whitespace-separated chunk that contains a letter or digit,
with leading/trailing punctuation removed, compared without case: "**Relationship**," is the word
"relationship". IFEvalG compared the raw chunk for first words (so "Relationship," failed) and
deleted every symbol for last words ("don't" became "dont").
"""

from __future__ import annotations

from .params import Checker, Param
from .text import Doc, strip_edge_punctuation

_OPEN_QUOTES = ('"', "\u201c")
_CLOSE_QUOTES = ('"', "\u201d")


def normalise_word(word: str) -> str:
    return strip_edge_punctuation(word).lower()


def first_word_of(text: str) -> str:
    """The first word of `text`, normalised ("" when there is none)."""
    for chunk in text.split():
        if any(ch.isalnum() for ch in chunk):
            return normalise_word(chunk)
    return ""


def last_word_of(text: str) -> str:
    """The last word of `text`, normalised ("" when there is none)."""
    for chunk in reversed(text.split()):
        if any(ch.isalnum() for ch in chunk):
            return normalise_word(chunk)
    return ""


def end_checker(doc: Doc, *, end_phrase: str) -> bool:
    """startend:end_checker: the response ends with `end_phrase` (case-insensitive; outer quotes ignored)."""
    return doc.text.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def quotation(doc: Doc) -> bool:
    """startend:quotation: the whole response is wrapped in double quotation marks (straight or curly)."""
    text = doc.text.strip()
    return len(text) > 1 and text.startswith(_OPEN_QUOTES) and text.endswith(_CLOSE_QUOTES)


def first_word_sent(doc: Doc, *, first_word: str) -> bool:
    """first_word:first_word_sent: every sentence starts with `first_word`."""
    target = normalise_word(first_word)
    sentences = doc.sentences
    return bool(sentences) and all(first_word_of(s) == target for s in sentences)


def first_word_answer(doc: Doc, *, first_word: str) -> bool:
    """first_word:first_word_answer: the response starts with `first_word`."""
    return first_word_of(doc.text) == normalise_word(first_word)


def last_word_sent(doc: Doc, *, last_word: str) -> bool:
    """last_word:last_word_sent: every sentence ends with `last_word` (before its punctuation)."""
    target = normalise_word(last_word)
    sentences = doc.sentences
    return bool(sentences) and all(last_word_of(s) == target for s in sentences)


def last_word_answer(doc: Doc, *, last_word: str) -> bool:
    """last_word:last_word_answer: the response's last word is `last_word`."""
    return last_word_of(doc.text) == normalise_word(last_word)


CHECKERS: dict[str, Checker] = {
    "startend:end_checker": Checker(end_checker, (Param("end_phrase", "text"),)),
    "startend:quotation": Checker(quotation),
    "first_word:first_word_sent": Checker(first_word_sent, (Param("first_word", "word"),)),
    "first_word:first_word_answer": Checker(first_word_answer, (Param("first_word", "word"),)),
    "last_word:last_word_sent": Checker(last_word_sent, (Param("last_word", "word"),)),
    "last_word:last_word_answer": Checker(last_word_answer, (Param("last_word", "word"),)),
}
