"""IFBench ``count:*`` and ``ratio:*`` checkers: word, name, number, keyword and sentence-type counts.

Behaviour follows allenai/IFBench's checkers (Apache-2.0), reproduced here; where a reference checker
would raise (no word at all, fewer than three characters), the constraint is not followed.
"""

from __future__ import annotations

import re

from ..ifeval.params import Checker, Param
from ..ifeval.text import Doc, count_words
from .lexicon import STOPWORDS
from .text import drop_punctuation, rule_sentences, strip_punctuation

_CONJUNCTIONS = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})
_PRONOUNS = frozenset(
    "i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself she her "
    "hers herself it its itself they them their theirs themselves".split()
)
# The names the IFBench prompt lists ("... from this list of person names: Emma, Liam, ...").
PERSON_NAMES = (
    "Emma", "Liam", "Sophia", "Jackson", "Olivia", "Noah", "Ava", "Lucas", "Isabella", "Mason", "Mia", "Ethan",
    "Charlotte", "Alexander", "Amelia", "Benjamin", "Harper", "Leo", "Zoe", "Daniel", "Chloe", "Samuel", "Lily",
    "Matthew", "Grace", "Owen", "Abigail", "Gabriel", "Ella", "Jacob", "Scarlett", "Nathan", "Victoria", "Elijah",
    "Layla", "Nicholas", "Audrey", "David", "Hannah", "Christopher", "Penelope", "Thomas", "Nora", "Andrew", "Aria",
    "Joseph", "Claire", "Ryan", "Stella", "Jonathan",
)  # fmt: skip
_DIGITS_RE = re.compile(r"\d+")
_WORD_RE = re.compile(r"\w+")
_JAPANESE_RE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_KEYWORD_COUNTS = (1, 2, 3, 5, 7)
_MARKS = ".,!?;:"


def word_count_range(doc: Doc, *, min_words: int, max_words: int) -> bool:
    """count:word_count_range: between min_words and max_words ``\\w+`` words, inclusive."""
    return min_words <= count_words(doc.text) <= max_words


def unique_word_count(doc: Doc, *, N: int) -> bool:
    """count:unique_word_count: at least N distinct lower-cased chunks (edge punctuation removed; a chunk
    of punctuation only counts as the empty word, as in IFBench)."""
    return len({strip_punctuation(chunk) for chunk in doc.lower.split()}) >= N


def conjunctions(doc: Doc, *, small_n: int) -> bool:
    """count:conjunctions: at least small_n distinct coordinating conjunctions (and, but, for, nor, or, so,
    yet). As in IFBench, distinct means distinct as written: "And" and "and," count twice."""
    found = {chunk for chunk in doc.split if strip_punctuation(chunk).lower() in _CONJUNCTIONS}
    return len(found) >= small_n


def person_names(doc: Doc, *, N: int) -> bool:
    """count:person_names: at least N of the prompt's 50 names occur (case-sensitive substrings, so
    "Leonard" contains "Leo", as in IFBench)."""
    return sum(1 for name in PERSON_NAMES if name in doc.text) >= N


def numbers(doc: Doc, *, N: int) -> bool:
    """count:numbers: exactly N digit runs once punctuation is removed ("3.14" and "1,000" are one number)."""
    return len(_DIGITS_RE.findall(drop_punctuation(doc.text))) == N


def keywords_multiple(doc: Doc, **keywords: str) -> bool:
    """count:keywords_multiple: keyword1..keyword5 occur exactly 1, 2, 3, 5 and 7 times (case-insensitive,
    non-overlapping substrings)."""
    text = doc.lower
    return all(
        text.count(keywords[f"keyword{i}"].lower()) == count for i, count in enumerate(_KEYWORD_COUNTS, start=1)
    )


def pronouns(doc: Doc, *, N: int) -> bool:
    """count:pronouns: at least N personal pronouns ("she/her" counts two)."""
    words = drop_punctuation(doc.lower.replace("/", " ")).split()
    return sum(1 for word in words if word in _PRONOUNS) >= N


def punctuation_cover(doc: Doc) -> bool:
    """count:punctuation: an interrobang (``?!``, ``!?`` or ``‽``) and, besides one ``?!``/``!?``, each of
    ``. , ! ? ; :`` at least once."""
    text = doc.text
    if "!?" not in text and "?!" not in text and "\u203d" not in text:
        return False
    rest = text.replace("?!", "", 1)
    if len(rest) == len(text):
        rest = text.replace("!?", "", 1)
    return all(mark in rest for mark in _MARKS)


def words_japanese(doc: Doc, *, N: int) -> bool:
    """count:words_japanese: every N-th whitespace chunk (edge punctuation removed; digits and empty
    chunks exempt) holds a kana or kanji character."""
    for index, chunk in enumerate(doc.split, start=1):
        if index % N:
            continue
        word = strip_punctuation(chunk)
        if word and not word.isdigit() and not _JAPANESE_RE.search(word):
            return False
    return True


def stop_words(doc: Doc, *, percentage: int) -> bool:
    """ratio:stop_words: stop words are at most `percentage` % of the ``\\w+`` words (no word: not followed)."""
    words = _WORD_RE.findall(doc.text)
    if not words:
        return False
    stop = sum(1 for word in words if word.lower() in STOPWORDS)
    return (stop / len(words)) * 100 <= percentage


def _sentence_ends(text: str) -> tuple[int, int, int]:
    sentences = rule_sentences(text)
    return tuple(sum(1 for s in sentences if s.endswith(mark)) for mark in ".?!")  # type: ignore[return-value]


def sentence_type(doc: Doc) -> bool:
    """ratio:sentence_type: twice as many sentences end in ``.`` as in ``?`` (0 and 0 included, as in IFBench)."""
    declarative, interrogative, _ = _sentence_ends(doc.text)
    return declarative == 2 * interrogative


def sentence_balance(doc: Doc) -> bool:
    """ratio:sentence_balance: as many sentences end in ``.`` as in ``?`` and in ``!``."""
    declarative, interrogative, exclamatory = _sentence_ends(doc.text)
    return declarative == interrogative == exclamatory


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def overlap(doc: Doc, *, reference_text: str, percentage: int) -> bool:
    """ratio:overlap: the share of the response's distinct character trigrams found in the reference text
    is within 2 points of `percentage` (a response under three characters is not followed)."""
    ours = _trigrams(doc.text)
    if not ours:
        return False
    share = len(ours & _trigrams(reference_text)) / len(ours)
    return percentage - 2 <= share * 100 <= percentage + 2


def sentence_words(doc: Doc) -> bool:
    """ratio:sentence_words: exactly three sentences, all of the same length in characters (IFBench checks
    only the lengths, not that the words differ)."""
    sentences = rule_sentences(doc.text)
    return len(sentences) == 3 and len({len(s) for s in sentences}) == 1


_N = (Param("N", "count"),)

CHECKERS: dict[str, Checker] = {
    "count:word_count_range": Checker(word_count_range, (Param("min_words", "count"), Param("max_words", "count"))),
    "count:unique_word_count": Checker(unique_word_count, _N),
    "count:conjunctions": Checker(conjunctions, (Param("small_n", "count"),)),
    "count:person_names": Checker(person_names, _N),
    "count:numbers": Checker(numbers, _N),
    "count:keywords_multiple": Checker(keywords_multiple, tuple(Param(f"keyword{i}", "text") for i in range(1, 6))),
    "count:pronouns": Checker(pronouns, _N),
    "count:punctuation": Checker(punctuation_cover),
    "count:words_japanese": Checker(words_japanese, (Param("N", "positive"),)),
    "ratio:stop_words": Checker(stop_words, (Param("percentage", "count"),)),
    "ratio:sentence_type": Checker(sentence_type),
    "ratio:sentence_balance": Checker(sentence_balance),
    "ratio:overlap": Checker(overlap, (Param("reference_text", "raw_text"), Param("percentage", "count"))),
    "ratio:sentence_words": Checker(sentence_words),
}
