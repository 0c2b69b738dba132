"""`prepare-eval --kind hle`: Humanity's Last Exam (cais/hle, parquet or jsonl) -> its text-only rows.

Not a slime hook. Only questions whose ``image`` field is empty are kept (2,158 of the 2,500: the
subset the paper's figures imply); the others are counted as ``has_image``. ``answer_type`` decides
the verifier, and is kept in the metadata:

- ``exactMatch``: domain ``math`` (the math verifier's final-answer equivalence), label = ``answer``;
- ``multipleChoice``: domain ``science`` (the MCQ verifier), label = the answer letter, and
  ``valid_letters`` read from the question's option lines (`choice_letters`).

The prompt is the official harness's: a system instruction asking for ``Explanation:``, a final answer
line (``Exact Answer:`` or ``Answer:``) and ``Confidence:``, then the question. Exact match is a
rule-based stand-in for the official LLM judge (`m2rl_slime.eval.hle_judge`, recorded as its own scorer).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from .schema import Row, RowError
from .templates import HLE_CHOICE_SYSTEM, HLE_EXACT_SYSTEM

ANSWER_TYPES = {"exactMatch": "math", "multipleChoice": "science"}
# An option line: "A. text", "A) text", "(A) text", "A: text" at the start of a line.
_OPTION = re.compile(r"^[ \t]*\(?([A-Z])[.):][ \t]*\S", re.MULTILINE)
_CHOICES_HEADER = re.compile(r"answer\s+choices\s*:?", re.IGNORECASE)
MIN_FALLBACK_LETTERS = 5


def has_image(raw: Mapping[str, Any]) -> bool:
    """True when the row's ``image`` field holds anything (a data URI, a path, bytes, a struct)."""
    image = raw.get("image")
    if image is None:
        return False
    if isinstance(image, str):
        return bool(image.strip())
    if isinstance(image, Mapping):
        return any(v not in (None, "", b"") for v in image.values())
    return bool(image)


def choice_letters(question: str, gold: str) -> tuple[str, str]:
    """(valid letters, how they were found) for a multiple-choice question.

    The option lines after the last "Answer Choices" header (or, without one, anywhere in the question)
    give the letters: the longest run A, B, C, ... in order of first appearance. When that run does not
    contain the gold letter, the letters are A up to the gold letter, at least A-E (``fallback``).
    """
    headers = list(_CHOICES_HEADER.finditer(question))
    tail = question[headers[-1].end() :] if headers else question
    run = ""
    for letter in _OPTION.findall(tail):
        if letter == string.ascii_uppercase[len(run)]:
            run += letter
            if len(run) == len(string.ascii_uppercase):
                break
    if len(run) >= 2 and gold in run:
        return run, "answer_choices" if headers else "option_lines"
    last = max(string.ascii_uppercase.index(gold) + 1, MIN_FALLBACK_LETTERS)
    return string.ascii_uppercase[:last], "fallback"


def _text(raw: Mapping[str, Any], name: str, reason: str) -> str:
    value = raw.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise RowError(reason, name, "missing or not a non-empty string")
    return value.strip()


def hle_row(raw: Mapping[str, Any], source: str) -> Row:
    """One text-only HLE question -> a prepared row (raises ``RowError("has_image")`` for the others)."""
    if has_image(raw):
        raise RowError("has_image", "image", "not a text-only question")
    uid = _text(raw, "id", "missing_id")
    question = _text(raw, "question", "missing_prompt")
    answer = _text(raw, "answer", "missing_label")
    answer_type = raw.get("answer_type")
    if answer_type not in ANSWER_TYPES:
        raise RowError(
            "bad_answer_type", "answer_type", f"expected one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}"
        )
    metadata: dict[str, Any] = {"source": source, "uid": uid, "benchmark": "hle", "answer_type": answer_type}
    for key in ("category", "raw_subject"):
        if isinstance(raw.get(key), str):
            metadata[key] = raw[key]
    if answer_type == "multipleChoice":
        letter = answer.strip().rstrip(".").strip("()").upper()
        if len(letter) != 1 or letter not in string.ascii_uppercase:
            raise RowError("bad_label", "answer", f"a multiple-choice answer must be one letter, got {answer!r:.40}")
        metadata["valid_letters"], metadata["letters_from"] = choice_letters(question, letter)
        system, label = HLE_CHOICE_SYSTEM, letter
    else:
        system, label = HLE_EXACT_SYSTEM, answer
    prompt = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return Row(prompt, label, ANSWER_TYPES[answer_type], metadata, [])
