"""Math verifier: final-answer equivalence on top of `math-verify` (the `math` domain of the reward router).

The final answer is the last box or the last `Answer: ...` statement, whichever comes later
(`answer_extract`); the paper's training prompt asks for the latter, which M2RL's grader rejected (bug R1).
Gold and prediction are each wrapped in `\\boxed{}` before `math_verify.parse` (a bare gold such as `a+b`
is otherwise not extracted). math-verify's own signal-based timeouts are switched off: this module runs
inside a worker of `m2rl_slime.rewards.pool`, which enforces a hard deadline by killing the process.
Rules, examples and settings: docs/rewards_math.md.

Several values: a gold with several boxes or a top-level list (`1, 2`, `\\{1, 2\\}`) has
several values. A prediction whose final answer holds several boxes is then compared with it as a set
(order-free); otherwise the last box decides.

Fixes on top of math-verify 0.9.0's known false positives:
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

from ..errors import LabelError
from .answer_extract import Candidate, final_answer, final_boxes, strip_math_delimiters
from .labels import label_text
from .result import Reason, Result

_EULER = re.compile(r"\\(?:mathrm|operatorname|mathit|text|rm)\s*\{\s*e\s*\}")
_SCIENTIFIC = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*[eE]\s*([+-]?\d{1,4})")
_ELLIPSIS = re.compile(r"\\[lc]?dots[bc]?|\\ldotp|\.\.\.|…")
# Digit groups of three: "1 000", "1\,000", "1{,}000", "12 345.5" (thin and no-break spaces too); "1,000".
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:(?:\\[,;:! ]|\\thinspace ?|~|\{,\}|[ \u00a0\u2009\u202f])\d{3})+(?:\.\d+)?")
_COMMA_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_NOT_NUMBER = re.compile(r"[^0-9.+-]")
_INTEGER = re.compile(r"[+-]?\d+")
_RATIONAL = re.compile(
    r"([+-]?)(?:(\d{1,15}(?:\.\d{1,15})?)|\\d?frac\s*\{\s*(\d{1,15})\s*\}\s*\{\s*(\d{1,15})\s*\}"
    r"|(\d{1,15})\s*/\s*(\d{1,15}))"
)
_BRACKET = re.compile(r"[()\[\]{}]")
_TUPLE_CHARS = 200
_TEXT = re.compile(r"\\text\s*\{([^{}]*)\}")
_SPACE = re.compile(r"\s+")
MAX_SET_ITEMS = 16


@dataclass(frozen=True, slots=True)
class MathConfig:
    """Settings of the `math` section of `m2rl_reward`.

    Attributes:
        max_answer_chars: Longer extracted answers are not parsed (reason `parse_error`); a longer gold is
            compared by exact text (integers by value) instead of through math-verify.
        float_rounding: Decimal places math-verify rounds floats to before comparing.
        relative_tolerance: Two accepted numeric values must also agree to this relative tolerance.
        allow_answer_line: Accept a final `Answer: ...` statement as well as `\\boxed{}`.
        max_nesting: Answers nesting `(`, `[` and `{` deeper than this are not parsed (reason `parse_error`):
            math-verify's parser slows down steeply with depth (`((((((((1))))))))`, `x^{x^{x^{...}}}`).
    """

    max_answer_chars: int = 1000
    float_rounding: int = 6
    relative_tolerance: float = 1e-5
    allow_answer_line: bool = True
    max_nesting: int = 8


@dataclass(frozen=True, slots=True)
class Gold:
    """A normalised gold answer: the whole `text`, and its `values` (two or more when it has several)."""

    text: str
    values: tuple[str, ...]


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


def normalise(text: str) -> str:
    """Delimiters off, digit groups joined, scientific notation as `a\\times 10^{b}`, `\\mathrm{e}` as `e`.

    Linear in `len(text)`; callers cap the length first where math-verify follows.
    """
    text = strip_math_delimiters(text)
    if _GROUPED.fullmatch(text) or _COMMA_GROUPED.fullmatch(text):
        return _NOT_NUMBER.sub("", text)
    sci = _SCIENTIFIC.fullmatch(text)
    if sci:  # "3.2e5" would be read as 3.2*e*5
        return f"{sci.group(1)}\\times 10^{{{int(sci.group(2))}}}"
    return _EULER.sub("e", text)


def split_values(text: str) -> tuple[str, ...]:
    """The values of a top-level list (`1, 2`, `\\{1, 2\\}`, `(2,2), (6,2)`); `(text,)` for one value.

    Tuples, intervals and grouped numbers (`(1, 2)`, `[1, 3]`, `1,000`) are one value.
    """
    inner = text.strip()
    if _COMMA_GROUPED.fullmatch(inner) or _ELLIPSIS.search(inner):
        return (text,)
    for left, right in (("\\left\\{", "\\right\\}"), ("\\{", "\\}")):
        if inner.startswith(left) and inner.endswith(right) and "\\}" not in inner[len(left) : -len(right)]:
            inner = inner[len(left) : len(inner) - len(right)]
            break
    items = _split_items(inner)
    return tuple(items) if len(items) > 1 and all(items) else (text,)


def parse_gold(label: Any) -> Gold:
    """The normalised gold of a label of any scalar type (see `labels`); a string may hold several boxes.

    Raises:
        LabelError: The label is missing, empty, of an unusable type, or a number that overflows.
    """
    raw = label_text(label)
    boxes = final_boxes(raw)
    values = [v for v in dict.fromkeys(normalise(t) for t in ([b.item for b in boxes] if boxes else [raw])) if v]
    if not values:
        raise LabelError(f"math label has no answer: {label!r}"[:200])
    if len(values) > 1:
        return Gold(", ".join(values), tuple(values))
    return Gold(values[0], split_values(values[0]))


@lru_cache(maxsize=4096)
def _parse_boxed(text: str) -> tuple:
    """math-verify's parse of `\\boxed{text}`, cached per process: the 16 samples of a GRPO group share one
    gold and often repeat answers (math-verify's own cache holds 20 entries). Parsed sympy objects are immutable.
    """
    from math_verify import parse

    return tuple(parse("\\boxed{" + text + "}", extraction_config=_extraction_config(), parsing_timeout=None))


def _digits(text: str) -> str:
    """Canonical form of an integer string of any length: sign only if negative, no leading zeros."""
    negative = text.startswith("-")
    body = text.lstrip("+-").lstrip("0") or "0"
    return "-" + body if negative and body != "0" else body


def _rational(text: str) -> tuple[Fraction, bool] | None:
    """(value, exact) of a plain integer, decimal or simple fraction (`\\frac{a}{b}`, `a/b`), else None.

    `exact` is False for a decimal, which math-verify compares with rounding.
    """
    match = _RATIONAL.fullmatch(text.strip())
    if match is None:
        return None
    sign, decimal, frac_num, frac_den, num, den = match.groups()
    if decimal is not None:
        value, exact = Fraction(decimal), "." not in decimal
    else:
        numerator, denominator = (frac_num, frac_den) if frac_num is not None else (num, den)
        if int(denominator) == 0:
            return None
        value, exact = Fraction(int(numerator), int(denominator)), True
    return (-value if sign == "-" else value), exact


def _bracketed(text: str) -> tuple[str, list[str]] | None:
    """(brackets, items) of `(a, b)` or `[a, b]` whose outer brackets enclose the whole text, else None."""
    if len(text) < 2 or text[0] not in "([" or text[-1] not in ")]":
        return None
    depth = 0
    for event in _BRACKET.finditer(text, 0, len(text) - 1):
        depth += 1 if event.group() in "([{" else -1
        if depth == 0:
            return None
    return text[0] + text[-1], _split_items(text[1:-1])


def _fast_numeric(gold: str, pred: str) -> bool | None:
    """Decide plain numbers without a parser, exactly where math-verify would agree or be less exact.

    Integers of any length and simple fractions compare exactly; a decimal equal to the other side is
    equal; tuples and intervals of such numbers (same brackets) compare item by item. Returns None
    (undecided: use math-verify) for anything else, e.g. an unequal decimal, which math-verify rounds.
    """
    if _INTEGER.fullmatch(gold) and _INTEGER.fullmatch(pred):
        return _digits(gold) == _digits(pred)
    a, b = _rational(gold), _rational(pred)
    if a is not None and b is not None:
        if a[0] == b[0]:
            return True
        return False if a[1] and b[1] else None
    if a is not None or b is not None or len(gold) > _TUPLE_CHARS or len(pred) > _TUPLE_CHARS:
        return None
    g, p = _bracketed(gold), _bracketed(pred)
    if g is None or p is None or g[0] != p[0] or len(g[1]) != len(p[1]) or len(g[1]) < 2:
        return None
    verdicts = [
        _fast_numeric(x, y) if _RATIONAL.fullmatch(x) and _RATIONAL.fullmatch(y) else None for x, y in zip(g[1], p[1])
    ]
    return None if None in verdicts else all(verdicts)


def nesting_depth(text: str) -> int:
    """The deepest nesting of `(`, `[` and `{` in `text` (unbalanced openers count)."""
    depth = deepest = 0
    for event in _BRACKET.finditer(text):
        if event.group() in "([{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


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


def _plain(text: str) -> str:
    return _SPACE.sub("", _TEXT.sub(r"\1", text)).lower()


def _equal(gold_text: str, pred_text: str, config: MathConfig) -> bool:
    """Whether two answer strings are equivalent (an unparseable gold falls back to plain-text equality)."""
    from math_verify import verify

    fast = _fast_numeric(gold_text, pred_text)
    if fast is not None:
        return fast
    gold = _parse_boxed(gold_text)
    if not gold:
        return _plain(gold_text) == _plain(pred_text)  # free text such as "Tuesday"
    pred = _parse_boxed(pred_text)
    if not pred:
        return False
    ok = verify(list(gold), list(pred), float_rounding=config.float_rounding, timeout_seconds=None)
    return bool(ok) and _numbers_agree(gold[0], pred[0], config.relative_tolerance)


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


def _equal_sequence(gold_text: str, pred_text: str, config: MathConfig) -> bool:
    gold_items, pred_items = _split_items(gold_text), _split_items(pred_text)
    if len(gold_items) != len(pred_items):
        return False
    for g, p in zip(gold_items, pred_items):
        g_dots, p_dots = bool(_ELLIPSIS.fullmatch(g)), bool(_ELLIPSIS.fullmatch(p))
        if g_dots or p_dots:
            if g_dots != p_dots:
                return False
            continue
        if not _equal(g, p, config):
            return False
    return True


def _equal_sets(gold: tuple[str, ...], pred: tuple[str, ...], config: MathConfig) -> bool:
    """Order-free: every predicted value equals some gold value and every gold value is predicted."""
    found = [False] * len(gold)
    for p in pred:
        hits = [i for i, g in enumerate(gold) if _equal(g, p, config)]
        if not hits:
            return False
        for i in hits:
            found[i] = True
    return all(found)


def _pred_values(candidate: Candidate, max_chars: int) -> tuple[str, ...] | None:
    """The values of a prediction's several boxes, or None when one of them is longer than `max_chars`."""
    if any(len(item) > max_chars for item in candidate.items):
        return None
    values = []
    for item in candidate.items:
        values.extend(split_values(normalise(item)))
    return tuple(dict.fromkeys(values))


def _compare(gold: Gold, candidate: Candidate, pred: str, config: MathConfig) -> tuple[bool | None, str]:
    """(equal, note); `equal` is None when an answer is too long to parse."""
    if len(gold.text) > config.max_answer_chars:  # a long gold is the dataset's real answer: grade it exactly
        if _INTEGER.fullmatch(gold.text) and _INTEGER.fullmatch(pred):
            return _digits(gold.text) == _digits(pred), "long gold compared exactly"
        return _plain(gold.text) == _plain(pred), "long gold compared exactly"
    if len(gold.values) > 1 and len(candidate.items) > 1:
        values = _pred_values(candidate, config.max_answer_chars)
        if values is None:
            return None, "answer longer than max_answer_chars"
        if any(nesting_depth(v) > config.max_nesting for v in values):
            return None, "answer nested too deeply"
        if len(values) <= MAX_SET_ITEMS and len(gold.values) <= MAX_SET_ITEMS:
            return _equal_sets(gold.values, values, config), "several boxes compared as a set"
        joined = ", ".join(values)
        if len(joined) > config.max_answer_chars:
            return None, "answer longer than max_answer_chars"
        return _equal(gold.text, joined, config), "several boxes compared as one list"
    if len(pred) > config.max_answer_chars:
        return None, "answer longer than max_answer_chars"
    if nesting_depth(pred) > config.max_nesting:
        return None, "answer nested too deeply"
    if _ELLIPSIS.search(gold.text) or _ELLIPSIS.search(pred):
        return _equal_sequence(gold.text, pred, config), "ellipsis sequence compared item by item"
    return _equal(gold.text, pred, config), ""


def verify(response: str, label: Any, metadata: Mapping[str, Any], *, config: MathConfig | None = None) -> Result:
    """Grade a math answer against the gold `label`.

    Args:
        response: The graded text (thinking already removed).
        label: The gold answer: a string (possibly boxed, or several boxes) or a number of any type.
        metadata: Unused; accepted for the common verifier signature.
        config: Math settings (defaults if None).

    Returns:
        `ok`/`wrong`, or `no_answer` (no box and no `Answer:` statement), `parse_error` (answer too long),
        `bad_label` (missing or unusable gold).

    Example:
        >>> verify("... so the result is 3.\\nAnswer: \\\\frac{1}{2}", "0.5", {}).reason.value
        'ok'
    """
    config = config or MathConfig()
    try:
        gold = parse_gold(label)
    except LabelError as exc:
        return Result.fail(Reason.BAD_LABEL, error=str(exc)[:200])
    candidate = final_answer(response, statements=config.allow_answer_line)
    if candidate is None or not candidate.text:
        return Result.fail(Reason.NO_ANSWER)
    details: dict[str, Any] = {"source": candidate.source, "gold": gold.text[:200]}
    if candidate.items:
        details["boxes"] = [item[:100] for item in candidate.items[:MAX_SET_ITEMS]]
    if len(candidate.text) > max(config.max_answer_chars, 2 * len(gold.text)):  # capped before any regex
        details["extracted"] = candidate.text[:200]
        return Result.fail(Reason.PARSE_ERROR, error="answer longer than max_answer_chars", **details)
    pred = normalise(candidate.text)
    details["extracted"] = pred[:200]
    equal, note = _compare(gold, candidate, pred, config)
    if note:
        details["note"] = note
    if equal is None:
        return Result.fail(Reason.PARSE_ERROR, error=note, **details)
    return Result(1.0 if equal else 0.0, Reason.OK if equal else Reason.WRONG, details)
