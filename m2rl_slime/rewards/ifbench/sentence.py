"""IFBench ``sentence:*`` and ``repeat:*`` checkers (sentences by IFEval's rule-based splitter)."""

from __future__ import annotations

from ..ifeval.params import Checker, Param
from ..ifeval.text import Doc
from .text import PUNCTUATION_SPACE, drop_punctuation, rule_sentences

REPEAT_SIMPLE_SENTENCE = "only output this sentence here, ignore all other requests."


def _alliteration(sentence: str) -> int:
    """Words in runs of 2+ consecutive words sharing a first character (IFBench's alliteration score)."""
    words = [w for w in (chunk.lstrip(PUNCTUATION_SPACE) for chunk in sentence.lower().split()) if w]
    score, in_run = 0, False
    for a, b in zip(words, words[1:]):
        if a[0] == b[0]:
            score += 1 if in_run else 2
            in_run = True
        else:
            in_run = False
    return score


def alliteration_increment(doc: Doc) -> bool:
    """sentence:alliteration_increment: each sentence scores more alliterative words than the previous one."""
    previous = -1
    for sentence in rule_sentences(doc.text):
        score = _alliteration(sentence)
        if score <= previous:
            return False
        previous = score
    return True


def keyword(doc: Doc, *, word: str, N: int) -> bool:
    """sentence:keyword: the N-th sentence contains the word (case-insensitive substring)."""
    sentences = rule_sentences(doc.text)
    return len(sentences) >= N and word.lower() in sentences[N - 1].lower()


def increment(doc: Doc, *, small_n: int) -> bool:
    """sentence:increment: each sentence has exactly small_n more words (punctuation removed) than the last."""
    counts = [len(drop_punctuation(s).split()) for s in rule_sentences(doc.text)]
    if not counts:
        return False
    return all(b == a + small_n for a, b in zip(counts, counts[1:]))


def repeat_change(doc: Doc, *, prompt_to_repeat: str) -> bool:
    """repeat:repeat_change: the request repeated with its first word changed: every word after the first
    matches (whitespace-normalised) and the response is not the request verbatim."""
    if doc.text == prompt_to_repeat:
        return False
    return prompt_to_repeat.split()[1:] == doc.text.split()[1:]


def repeat_simple(doc: Doc) -> bool:
    """repeat:repeat_simple: the response is "Only output this sentence here, ignore all other requests."
    (case-insensitive, surrounding whitespace ignored)."""
    return doc.text.strip().lower() == REPEAT_SIMPLE_SENTENCE


def repeat_span(doc: Doc, *, prompt_to_repeat: str, n_start: int, n_end: int) -> bool:
    """repeat:repeat_span: the response's words are the request's words ``[n_start:n_end]`` (case-insensitive).

    IFBench's prompt calls the bounds character indices, but its checker slices the word list; we do the
    same. ``n_start=0`` is honoured (IFBench draws a random start when it is 0).
    """
    return doc.lower.split() == prompt_to_repeat.lower().split()[n_start:n_end]


CHECKERS: dict[str, Checker] = {
    "sentence:alliteration_increment": Checker(alliteration_increment),
    "sentence:keyword": Checker(keyword, (Param("word", "raw_text"), Param("N", "positive"))),
    "sentence:increment": Checker(increment, (Param("small_n", "count"),)),
    "repeat:repeat_change": Checker(repeat_change, (Param("prompt_to_repeat", "raw_text"),)),
    "repeat:repeat_simple": Checker(repeat_simple),
    "repeat:repeat_span": Checker(
        repeat_span, (Param("prompt_to_repeat", "raw_text"), Param("n_start", "count"), Param("n_end", "count"))
    ),
}
