"""Science verifier: multiple-choice letters, and short numeric/symbolic answers through the math path.

The `science` domain of the reward router. Letter rules (unlike slime's gpqa.py, which reads "the answer
is \\boxed{B}" as "I", and M2RL's, which reads "The answer is clearly B." as "C"): the letter comes only
from the final answer of `answer_extract` (the last box, or the last `Answer:` statement, whichever is
later); a single letter counts in either case (`\\boxed{c}`, `Answer: c`) when it is one of the task's
valid letters; a statement naming two or more letters (`A or B`, `A, B, C, D (one of these)`, `A. Or B.`)
or several boxes with different letters are `ambiguous`; option text is never matched by containment.
Details: docs/rewards_math.md.
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
from .answer_extract import Candidate, final_answer, strip_math_delimiters
from .result import Reason, Result

# Letter scanning (case-insensitive letters; every pattern is linear and reads at most MAX_LETTER_SCAN chars).
MAX_LETTER_SCAN = 2000
_WRAP = r"(?:\s|\$|\*|_|\\[(\[]|\\(?:text|textbf|mathrm|mathbf|mathit|textit|rm|bf|boxed)\s*\{)"
_LEAD = re.compile(_WRAP + "*")
_PREFIX = re.compile(
    r"(?:the\s+)?(?:(?:correct|final|right|best)\s+)?(?:answer|option|choice)s?(?:\s+is)?\s*:?\s*"
    r"|(?:either|both|maybe|perhaps|possibly|probably)\s+",
    re.IGNORECASE,
)
_LETTER_TOKEN = re.compile(r"[(\[]?\s?([A-Za-z])\s?[)\]]?(?![A-Za-z0-9])")
_FOLLOW = re.compile(r"[\s)\]}*_$]*")
_PUNCT = r"(?:[\s()\[\]{}*.:~$_-]|\\[,;: !]|\\q?quad(?![A-Za-z])|\\(?:text|textbf|mathrm|mathbf)\s*\{)"
_JOIN = re.compile(
    rf"{_PUNCT}*(?:(?:[,/&;]|\b(?:or|and|nor|maybe|perhaps|possibly|probably|either|vs)\b){_PUNCT}*)+", re.I
)
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


def prompt_text(prompt: Any) -> str | None:
    """The user turns of a chat prompt, joined: where the options are read from when a row's metadata
    lists none (callers pass it as ``metadata["prompt_text"]``)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        parts = [m.get("content") for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        return "\n".join(p for p in parts if isinstance(p, str)) or None
    return None


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


def _ends_letter(text: str, end: int) -> bool:
    """Whether a letter read up to `end` stands alone: what follows its closers is the end or not a word."""
    after = _FOLLOW.match(text, end).end()
    return after == len(text) or not text[after].isalnum()


def extract_letter(candidate: str) -> tuple[str | None, bool]:
    """Return (letter, ambiguous) for the content of a box or an answer statement.

    The letter is read at the start, after wrappers (`$`, `**`, `\\text{`, ...) and a lead such as `Option`
    or `The correct answer is`. A letter counts in either case (`c` is C) when it stands alone: `B`, `(B)`,
    `B.`, `B: text`, `B) text`, `C (I think)`, but not `B because`, `a bit`, `I think`. A statement that goes
    on to name more letters joined by commas, slashes, `&`, `;` or words such as `or`, `and`, `maybe`
    (`A, B, C, D (one of these)`, `A. Or B.`, `A or maybe B`) is ambiguous, whatever follows.
    """
    text = candidate[:MAX_LETTER_SCAN]
    pos = _LEAD.match(text).end()
    lead = _PREFIX.match(text, pos)
    if lead:
        pos = _LEAD.match(text, lead.end()).end()
    first = _LETTER_TOKEN.match(text, pos)
    if first is None:
        return None, False
    letters = {first.group(1).upper()}
    pos = first.end()
    while True:
        join = _JOIN.match(text, pos)
        token = _LETTER_TOKEN.match(text, join.end()) if join else None
        if token is None or not _ends_letter(text, token.end()):
            break
        letters.add(token.group(1).upper())
        pos = token.end()
    if len(letters) > 1:
        return None, True
    if not _ends_letter(text, first.end()):
        return None, False
    return first.group(1).upper(), False


def _answer_letter(candidate: Candidate) -> tuple[str | None, bool]:
    """(letter, ambiguous) of a final answer; several boxes naming different letters are ambiguous."""
    if not candidate.items:
        return extract_letter(candidate.raw or candidate.text)
    found = [extract_letter(item) for item in candidate.items]
    if any(ambiguous for _, ambiguous in found) or len({letter for letter, _ in found if letter}) > 1:
        return None, True
    return found[-1]


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
    letter, ambiguous = _answer_letter(candidate)
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
