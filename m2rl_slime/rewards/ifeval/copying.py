"""Copy and combination checkers: repeat the request, copy spans, give two responses."""

from __future__ import annotations

from typing import Any

from .params import ArgumentError, Checker, Param
from .text import Doc

_RESPONSE_SEPARATOR = "******"


def _same_text(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def two_responses(doc: Doc) -> bool:
    """combination:two_responses: two different non-empty responses separated by ``******``.

    An empty piece is allowed only before the first or after the last separator.
    """
    pieces = doc.text.split(_RESPONSE_SEPARATOR)
    valid = []
    for index, piece in enumerate(pieces):
        if piece.strip():
            valid.append(piece.strip())
        elif index not in (0, len(pieces) - 1):
            return False
    return len(valid) == 2 and valid[0] != valid[1]


def repeat_prompt(doc: Doc, *, prompt_to_repeat: str) -> bool:
    """combination:repeat_prompt: the response starts with the request, verbatim (case-insensitive)."""
    return doc.text.strip().lower().startswith(prompt_to_repeat.strip().lower())


def copy_exact(doc: Doc, *, prompt_to_repeat: str) -> bool:
    """copy:copy / copy:copying_simple: the response is exactly the request (case-insensitive, trimmed)."""
    return _same_text(doc.text, prompt_to_repeat)


def copying_multiple(doc: Doc, *, prompt_to_repeat: str, N: int) -> bool:
    """copy:copying_multiple: the request copied `N` times, separated by ``******``."""
    pieces = doc.text.split(_RESPONSE_SEPARATOR)
    return len(pieces) == N and all(_same_text(piece, prompt_to_repeat) for piece in pieces)


def copy_span_idx(doc: Doc, *, prompt_to_repeat: str, n_start: int, n_end: int) -> bool:
    """new:copy_span_idx: the response is ``prompt_to_repeat[n_start:n_end]`` (case-insensitive, trimmed).

    The slice end is exclusive, as in IFEvalG's check (its prompt says "including").
    """
    return _same_text(doc.text, prompt_to_repeat[n_start:n_end])


def _validate_span(args: dict[str, Any], instruction_id: str) -> None:
    start, end, prompt = args["n_start"], args["n_end"], args["prompt_to_repeat"]
    if start > end or not prompt[start:end].strip():
        raise ArgumentError(
            f"{instruction_id}: span [{start}:{end}] of prompt_to_repeat ({len(prompt)} chars) is empty"
        )


def _find_phrases(text: str, first: str, last: str) -> list[str]:
    """Non-overlapping ``{first} .*? {last}`` matches within lines (IFEvalG's regex), in linear time."""
    found = []
    head, tail = first + " ", " " + last
    for line in text.split("\n"):
        pos = 0
        while True:
            start = line.find(head, pos)
            if start < 0:
                break
            stop = line.find(tail, start + len(head))
            if stop < 0:
                break  # no later start on this line can find an end either
            end = stop + len(tail)
            found.append(line[start:end])
            pos = end
    return found


def repeat_phrase(doc: Doc, *, phrase: str, small_n: int) -> bool:
    """copy:repeat_phrase: `phrase` appears exactly `small_n` times, each with exactly one word changed.

    Occurrences are spans from the phrase's first word to its last word on one line; each must have
    the phrase's word count and differ from it in exactly one word.
    """
    reference = phrase.split()
    found = _find_phrases(doc.text, reference[0], reference[-1])
    if len(found) != small_n:
        return False
    for occurrence in found:
        words = occurrence.split()
        if len(words) != len(reference) or sum(a != b for a, b in zip(words, reference)) != 1:
            return False
    return True


def _validate_phrase(args: dict[str, Any], instruction_id: str) -> None:
    if len(args["phrase"].split()) < 2:
        raise ArgumentError(f"{instruction_id}: phrase {args['phrase']!r} must have at least two words")


CHECKERS: dict[str, Checker] = {
    "combination:two_responses": Checker(two_responses),
    "combination:repeat_prompt": Checker(repeat_prompt, (Param("prompt_to_repeat", "raw_text"),)),
    "copy:copy": Checker(copy_exact, (Param("prompt_to_repeat", "raw_text"),)),
    "copy:copying_simple": Checker(copy_exact, (Param("prompt_to_repeat", "raw_text"),)),
    "copy:copying_multiple": Checker(
        copying_multiple, (Param("prompt_to_repeat", "raw_text"), Param("N", "positive"))
    ),
    "copy:repeat_phrase": Checker(
        repeat_phrase, (Param("phrase", "text"), Param("small_n", "positive")), validate=_validate_phrase
    ),
    "new:copy_span_idx": Checker(
        copy_span_idx,
        (Param("prompt_to_repeat", "raw_text"), Param("n_start", "count"), Param("n_end", "count")),
        validate=_validate_span,
    ),
}
