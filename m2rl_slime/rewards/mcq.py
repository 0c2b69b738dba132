"""Science verifier: multiple-choice letters, and short numeric/symbolic answers through the math path.

Letter extraction follows the rules of reward_anchors.md §5.2 (unlike slime's gpqa.py, which reads
"the answer is \\boxed{B}" as "I", and M2RL's, which reads "The answer is clearly B." as "C"):
the letter comes only from the last `\\boxed{...}` or the last `Answer: X` line, whichever is later;
matching is case-sensitive; it must be one of the task's valid letters; several letters are rejected as
ambiguous; option text is never matched by containment.
"""

from __future__ import annotations

import ast
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import math_answer
from .answer_extract import final_answer, strip_math_delimiters
from .result import Reason, Result

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mathit|textit|rm|bf)\s*\{([^{}]*)\}")
# "B", "(B)", "[B]", "**B**", "B)", "B.", "B: option text", "B) option text" (not "B option text").
_LETTER = re.compile(r"^[(\[*]*([A-Z])[)\].*]*(?:\s*[:.),]\s*.*)?$", re.DOTALL)
_LETTER_LIST = re.compile(r"^[(\[]?[A-Z][)\]]?(?:\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?[A-Z][)\]]?)+[.\s]*$")
_OPTION_LINE = re.compile(r"^[ \t]*\(?([A-Z])[).:][ \t]+\S", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class McqConfig:
    """Settings of the `science` section of `m2rl_reward`.

    Attributes:
        default_letters: Valid letters when neither metadata nor the prompt says (A-J covers GPQA/MMLU-Pro).
        math: Settings for short numeric/symbolic answers graded through the math path.
    """

    default_letters: str = "ABCDEFGHIJ"
    math: math_answer.MathConfig = math_answer.MathConfig()


def _letters_from_options(options: Any) -> str | None:
    if isinstance(options, Mapping):
        keys = list(options)
    elif isinstance(options, (list, tuple)):
        if all(isinstance(o, Mapping) and len(o) == 1 for o in options):
            keys = [next(iter(o)) for o in options]
        else:
            return string.ascii_uppercase[: len(options)] if options else None
    else:
        return None
    letters = "".join(k for k in keys if isinstance(k, str) and len(k) == 1 and k.isupper())
    return letters or None


def valid_letters(metadata: Mapping[str, Any], default: str) -> tuple[str, str]:
    """The task's valid letters and where they came from (metadata, options, choices, prompt, default)."""
    letters = metadata.get("valid_letters")
    if isinstance(letters, (list, tuple)):
        letters = "".join(str(x) for x in letters)
    if isinstance(letters, str) and letters.strip():
        return "".join(ch for ch in letters if ch.isupper()), "valid_letters"
    for key in ("options", "choices"):
        found = _letters_from_options(metadata.get(key))
        if found:
            return found, key
    prompt = metadata.get("prompt_text")
    if isinstance(prompt, str):
        found = "".join(dict.fromkeys(_OPTION_LINE.findall(prompt)))
        if len(found) >= 2:
            return found, "prompt"
    return default, "default"


def _option_texts(metadata: Mapping[str, Any]) -> dict[str, str]:
    options = metadata.get("options")
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            try:
                options = ast.literal_eval(options)
            except (ValueError, SyntaxError):
                return {}
    if isinstance(options, Mapping):
        return {str(k): str(v) for k, v in options.items()}
    if isinstance(options, (list, tuple)) and all(isinstance(o, Mapping) and len(o) == 1 for o in options):
        return {str(k): str(v) for o in options for k, v in o.items()}
    if isinstance(options, (list, tuple)):
        return {string.ascii_uppercase[i]: str(o) for i, o in enumerate(options[:26])}
    return {}


def correct_letter(label: Any, metadata: Mapping[str, Any], letters: str) -> str | None:
    """The gold letter from `metadata.correct_letter`, a letter label, an int index, or an option's text."""
    explicit = metadata.get("correct_letter")
    if isinstance(explicit, str) and len(explicit.strip()) == 1:
        return explicit.strip().upper()
    if isinstance(label, bool):
        return None
    if isinstance(label, int) and 0 <= label < len(letters):
        return letters[label]
    if isinstance(label, str):
        text = strip_math_delimiters(label).strip().strip("()")
        if len(text) == 1 and text.upper() in letters:
            return text.upper()
        normalised = " ".join(label.split()).lower()
        for letter, option in _option_texts(metadata).items():
            if " ".join(option.split()).lower() == normalised:
                return letter
    return None


def extract_letter(candidate: str) -> tuple[str | None, bool]:
    """Return (letter, ambiguous) for the content of a box or an `Answer:` line (case-sensitive)."""
    text = strip_math_delimiters(candidate)
    for _ in range(3):
        text = _WRAPPERS.sub(r"\1", text).strip()
    if _LETTER_LIST.match(text):
        return None, True
    match = _LETTER.match(text)
    if match is None:
        return None, False
    return match.group(1), False


def verify(response: str, label: Any, metadata: Mapping[str, Any], *, config: McqConfig | None = None) -> Result:
    """Grade a science answer: a multiple-choice letter, or a short answer through the math verifier.

    Args:
        response: The graded text (thinking already removed).
        label: The correct letter (or option index/text); a non-letter label with no options is a short
            numeric/symbolic answer and is graded by `math_answer.verify`.
        metadata: May carry `valid_letters`, `options`/`choices`, `correct_letter`, `prompt_text`.
        config: Science settings.

    Returns:
        `ok`/`wrong`, `no_answer`, `ambiguous` (several letters), or `bad_label`.
    """
    config = config or McqConfig()
    metadata = metadata if isinstance(metadata, Mapping) else {}
    letters, letters_source = valid_letters(metadata, config.default_letters)
    gold = correct_letter(label, metadata, letters)
    if gold is None and isinstance(label, str) and len(label.strip()) == 1 and label.strip().isalpha():
        return Result.fail(
            Reason.BAD_LABEL, error=f"label letter {label.strip()!r} is not among valid letters {letters}"
        )
    if gold is None:
        if isinstance(label, (str, int, float)) and not isinstance(label, bool) and not _option_texts(metadata):
            result = math_answer.verify(response, label, metadata, config=config.math)
            return Result(result.score, result.reason, {**result.details, "graded_as": "short_answer"})
        return Result.fail(Reason.BAD_LABEL, error=f"no correct letter in label {label!r} for letters {letters}"[:200])
    if gold not in letters:
        return Result.fail(Reason.BAD_LABEL, error=f"correct letter {gold} not among valid letters {letters}")
    candidate = final_answer(response)
    if candidate is None:
        return Result.fail(Reason.NO_ANSWER, valid_letters=letters)
    letter, ambiguous = extract_letter(candidate.text)
    details = {
        "extracted": candidate.text[:100],
        "source": candidate.source,
        "letter": letter,
        "gold": gold,
        "valid_letters": letters,
        "letters_from": letters_source,
    }
    if ambiguous:
        return Result(0.0, Reason.AMBIGUOUS, details)
    if letter is None or letter not in letters:
        return Result(0.0, Reason.NO_ANSWER, details)
    return Result(1.0 if letter == gold else 0.0, Reason.OK if letter == gold else Reason.WRONG, details)
