"""Math verifier: final-answer equivalence on top of `math-verify`.

The final answer is the last `\\boxed{}` or the last `Answer: ...` line (the paper's training prompt asks
for the latter, and M2RL's grader rejected it: bug R1), whichever comes later. Gold and prediction are
each wrapped in `\\boxed{}` before `math_verify.parse` (a bare gold such as `a+b` is otherwise not
extracted). math-verify's own signal-based timeouts are switched off: this module runs inside a worker of
`m2rl_slime.rewards.pool`, which enforces a hard deadline by killing the process.

Fixes on top of math-verify 0.9.0's known false positives (reward_anchors.md §0 item 2):
- `\\mathrm{e}` truncated the expression (`1-1/\\mathrm{e}` == `1+1/\\mathrm{e}`): normalised to `e`.
- Absolute rounding made tiny values equal (`1/2004!` == `1/2006!`, `1/2^{99}` == `1/2^{98}`): an
  accepted pair of numbers must also agree to a relative tolerance.
- Sequences with an ellipsis (`1,2,\\ldots,n` vs `1,3,5,\\ldots,2n-1`): compared item by item, in order,
  with the ellipses aligned.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from .answer_extract import final_answer, last_boxed, strip_math_delimiters
from .result import Reason, Result

_EULER = re.compile(r"\\(?:mathrm|operatorname|mathit|text|rm)\s*\{\s*e\s*\}")
_SCIENTIFIC = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*[eE]\s*([+-]?\d{1,4})\s*")
_ELLIPSIS = re.compile(r"\\[lc]?dots[bc]?|\\ldotp|\.\.\.|…")


@dataclass(frozen=True, slots=True)
class MathConfig:
    """Settings of the `math` section of `m2rl_reward`.

    Attributes:
        max_answer_chars: Longer extracted answers (or golds) are not parsed (reason `parse_error`).
        float_rounding: Decimal places math-verify rounds floats to before comparing.
        relative_tolerance: Two accepted numeric values must also agree to this relative tolerance.
        allow_answer_line: Accept a final `Answer: ...` line as well as `\\boxed{}`.
    """

    max_answer_chars: int = 1000
    float_rounding: int = 6
    relative_tolerance: float = 1e-5
    allow_answer_line: bool = True


class _DropTimeoutNotice(logging.Filter):
    """math-verify warns once that its own timeout is off; here the worker pool enforces the deadline."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


@lru_cache(maxsize=1)
def _extraction_config() -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutNotice())

    return [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


def _normalise(text: str) -> str:
    text = strip_math_delimiters(text)
    sci = _SCIENTIFIC.fullmatch(text)
    if sci:  # "3.2e5" would be read as 3.2*e*5
        return f"{sci.group(1)}\\times 10^{{{int(sci.group(2))}}}"
    return _EULER.sub("e", text)


@lru_cache(maxsize=4096)
def _parse_boxed(text: str) -> tuple:
    """math-verify's parse of `\\boxed{text}`, cached per process: the 16 samples of a GRPO group share one
    gold and often repeat answers (math-verify's own cache holds 20 entries). Parsed sympy objects are immutable.
    """
    from math_verify import parse

    return tuple(parse("\\boxed{" + text + "}", extraction_config=_extraction_config(), parsing_timeout=None))


_INTEGER = re.compile(r"[+-]?\d{1,15}")
_RATIONAL = re.compile(
    r"([+-]?)(?:(\d{1,15}(?:\.\d{1,15})?)|\\d?frac\s*\{\s*(\d{1,15})\s*\}\s*\{\s*(\d{1,15})\s*\}"
    r"|(\d{1,15})\s*/\s*(\d{1,15}))"
)


def _rational(text: str) -> Fraction | None:
    """The exact value of a plain integer, decimal or simple fraction (`\\frac{a}{b}`, `a/b`), else None."""
    match = _RATIONAL.fullmatch(text.strip())
    if match is None:
        return None
    sign, decimal, frac_num, frac_den, num, den = match.groups()
    if decimal is not None:
        value = Fraction(decimal)
    else:
        numerator, denominator = (frac_num, frac_den) if frac_num is not None else (num, den)
        if int(denominator) == 0:
            return None
        value = Fraction(int(numerator), int(denominator))
    return -value if sign == "-" else value


def _fast_numeric(gold: str, pred: str) -> bool | None:
    """Decide plain-number pairs without a parser: integers compare exactly; equal rationals are equal.

    Returns None (undecided: use math-verify) for anything else, including unequal non-integer rationals,
    so results are identical to the full path.
    """
    if _INTEGER.fullmatch(gold) and _INTEGER.fullmatch(pred):
        return int(gold) == int(pred)
    a, b = _rational(gold), _rational(pred)
    if a is not None and b is not None and a == b:
        return True
    return None


def _numbers_agree(gold: Any, pred: Any, rel_tol: float) -> bool:
    """False when both sides are plain numbers that differ beyond `rel_tol` (math-verify rounds absolutely)."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
        return True
    if gold.free_symbols or pred.free_symbols or not (gold.is_number and pred.is_number):
        return True
    try:
        # sympy Floats keep an arbitrary exponent: 1/2006! does not underflow to 0 as a Python float would.
        a, b = sympy.N(gold, 30), sympy.N(pred, 30)
        if a == b:
            return True
        diff, scale = sympy.Abs(a - b), sympy.Max(sympy.Abs(a), sympy.Abs(b))
        if not (diff.is_finite and scale.is_finite):
            return True
        return bool(diff <= rel_tol * scale)
    except (TypeError, ValueError, ArithmeticError):
        return True


def _verify_parsed(gold_text: str, pred_text: str, config: MathConfig) -> tuple[bool | None, str]:
    """Compare two answer strings. Returns (equal, note); `equal` is None when the gold cannot be parsed."""
    from math_verify import verify

    fast = _fast_numeric(gold_text, pred_text)
    if fast is not None:
        return fast, ""
    gold = _parse_boxed(gold_text)
    if not gold:
        return None, "gold not parseable"
    pred = _parse_boxed(pred_text)
    if not pred:
        return False, "prediction not parseable"
    ok = verify(list(gold), list(pred), float_rounding=config.float_rounding, timeout_seconds=None)
    if ok and not _numbers_agree(gold[0], pred[0], config.relative_tolerance):
        return False, "numbers differ beyond relative tolerance"
    return bool(ok), ""


def _split_items(text: str) -> list[str]:
    """Split a comma-separated sequence at top level (not inside braces/brackets/parentheses)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return items


def _verify_sequence(gold_text: str, pred_text: str, config: MathConfig) -> bool:
    gold_items, pred_items = _split_items(gold_text), _split_items(pred_text)
    if len(gold_items) != len(pred_items):
        return False
    for g, p in zip(gold_items, pred_items):
        g_dots, p_dots = bool(_ELLIPSIS.fullmatch(g)), bool(_ELLIPSIS.fullmatch(p))
        if g_dots or p_dots:
            if g_dots != p_dots:
                return False
            continue
        equal, _ = _verify_parsed(g, p, config)
        if not equal:
            return False
    return True


def gold_answer(label: Any) -> str | None:
    """The gold answer string of a label (a number or a string, possibly boxed), or None if unusable."""
    if isinstance(label, bool) or label is None:
        return None
    if isinstance(label, (int, float)):
        return repr(label) if isinstance(label, float) else str(label)
    if not isinstance(label, str) or not label.strip():
        return None
    boxed = last_boxed(label)
    return _normalise(boxed.text if boxed else label)


def verify(response: str, label: Any, metadata: Mapping[str, Any], *, config: MathConfig | None = None) -> Result:
    """Grade a math answer against the gold `label`.

    Args:
        response: The graded text (thinking already removed).
        label: The gold answer (string or number; may contain `\\boxed{}` or `$...$`).
        metadata: Unused; accepted for the common verifier signature.
        config: Math settings (defaults if None).

    Returns:
        `ok`/`wrong`, or `no_answer` (no box and no `Answer:` line), `parse_error` (answer too long or not
        parseable), `bad_label` (missing or unusable gold).

    Example:
        >>> verify("... so the result is 3.\\nAnswer: \\\\frac{1}{2}", "0.5", {}).reason.value
        'ok'
    """
    config = config or MathConfig()
    gold = gold_answer(label)
    if gold is None:
        return Result.fail(
            Reason.BAD_LABEL, error=f"math label must be a non-empty string or number, got {label!r}"[:200]
        )
    if len(gold) > config.max_answer_chars:
        return Result.fail(
            Reason.BAD_LABEL, error=f"gold answer longer than max_answer_chars={config.max_answer_chars}"
        )
    candidate = final_answer(response) if config.allow_answer_line else last_boxed(response)
    if candidate is None or not candidate.text:
        return Result.fail(Reason.NO_ANSWER)
    pred = _normalise(candidate.text)
    details = {"extracted": pred[:200], "source": candidate.source, "gold": gold[:200]}
    if len(pred) > config.max_answer_chars:
        return Result.fail(Reason.PARSE_ERROR, error="answer longer than max_answer_chars", **details)
    if _ELLIPSIS.search(gold) or _ELLIPSIS.search(pred):
        equal, note = _verify_sequence(gold, pred, config), "ellipsis sequence compared item by item"
    else:
        equal, note = _verify_parsed(gold, pred, config)
    if note:
        details["note"] = note
    if equal is None:
        # Unparseable gold (free text such as "Tuesday"): fall back to normalised string equality.
        equal = _plain(gold) == _plain(pred)
    return Result(1.0 if equal else 0.0, Reason.OK if equal else Reason.WRONG, details)


def _plain(text: str) -> str:
    text = re.sub(r"\\text\s*\{([^{}]*)\}", r"\1", text)
    return re.sub(r"\s+", "", text).lower()
