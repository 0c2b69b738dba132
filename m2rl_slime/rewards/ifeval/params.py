"""Checker specs and strict validation of instruction kwargs.

Every checker declares its keyword arguments as `Param`s. `Checker.bind` validates a row's kwargs
against them once, before any response is looked at: a missing or ill-typed required value raises
`ArgumentError` (a data bug, reported as ``bad_label``); a comparison word we do not know raises
`UnknownRelationError` (reported as ``unknown_instruction``). Nothing is ever drawn at random, unlike
IFEval's ``build_description``, which invents values for absent kwargs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import LabelError

LESS_THAN = "less than"
AT_LEAST = "at least"
RELATIONS = (LESS_THAN, AT_LEAST)

Kind = Literal["count", "positive", "text", "raw_text", "word", "words", "relation", "letter", "language", "ignored"]


class ArgumentError(LabelError):
    """A constraint's kwargs are missing, ill-typed or inconsistent (the row is malformed)."""


class UnknownRelationError(ArgumentError):
    """A relation/comparison word outside ``less than`` / ``at least``: fail closed, never guess."""

    def __init__(self, message: str, relation: str):
        super().__init__(message)
        self.relation = relation


@dataclass(frozen=True, slots=True)
class Param:
    """One keyword argument of a checker.

    Attributes:
        name: The kwargs key, exactly as IFEval/IFEvalG spell it.
        kind: How the value is validated and normalised (see `_coerce`).
        required: Whether the row must provide it (absent and None-valued keys count as missing).
    """

    name: str
    kind: Kind
    required: bool = True


@dataclass(frozen=True, slots=True)
class Checker:
    """An instruction id's checker: ``check(doc, **bound_kwargs) -> bool`` plus its declared kwargs.

    Attributes:
        check: The predicate; it receives a `Doc` and the bound kwargs by name.
        params: The kwargs it accepts.
        uses_language: Whether it runs language detection (the slow part, tens of ms on 32k chars).
        validate: Optional cross-argument check ``validate(bound, instruction_id)`` raising `ArgumentError`.
    """

    check: Callable[..., bool]
    params: tuple[Param, ...] = ()
    uses_language: bool = False
    validate: Callable[[dict[str, Any], str], None] | None = None

    def bind(self, kwargs: Mapping[str, Any], instruction_id: str) -> dict[str, Any]:
        """Validate `kwargs` (None values already dropped) and return the arguments for `check`.

        Raises:
            ArgumentError: an unexpected key, a missing required key or an ill-typed value.
            UnknownRelationError: a relation other than ``less than`` / ``at least``.
        """
        known = {p.name for p in self.params}
        extra = sorted(set(kwargs) - known)
        if extra:
            expected = ", ".join(sorted(known)) or "none"
            raise ArgumentError(f"{instruction_id}: unexpected kwargs {', '.join(extra)} (expected: {expected})")
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name not in kwargs:
                if param.required:
                    raise ArgumentError(f"{instruction_id}: missing required kwarg {param.name!r}")
                continue
            value = _coerce(param, kwargs[param.name], instruction_id)
            if param.kind != "ignored":
                bound[param.name] = value
        if self.validate is not None:
            self.validate(bound, instruction_id)
        return bound


def _coerce(param: Param, value: Any, instruction_id: str) -> Any:
    where = f"{instruction_id}: kwarg {param.name!r}"
    coerce = _COERCERS[param.kind]
    return coerce(value, where)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"{where} must be a non-negative integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ArgumentError(f"{where} must be a whole number, got {value!r}")
    if value < 0:
        raise ArgumentError(f"{where} must be non-negative, got {value!r}")
    return int(value)


def _positive(value: Any, where: str) -> int:
    number = _count(value, where)
    if number < 1:
        raise ArgumentError(f"{where} must be at least 1, got {value!r}")
    return number


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(f"{where} must be a non-empty string, got {value!r}")
    return value.strip()


def _raw_text(value: Any, where: str) -> str:
    """A non-blank string kept as given (character indices into it must stay valid)."""
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _word(value: Any, where: str) -> str:
    """A string, or a non-empty list whose first item is used (IFEvalG accepts both)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ArgumentError(f"{where} must be a string or a non-empty list of strings, got []")
        value = value[0]
    word = _text(value, where)
    if not any(ch.isalnum() for ch in word):
        raise ArgumentError(f"{where} must contain a letter or digit, got {value!r}")
    if len(word.split()) != 1:
        raise ArgumentError(f"{where} must be a single word (it is compared with one word), got {value!r}")
    return word


def _words(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ArgumentError(f"{where} must be a non-empty list of strings, got {value!r}")
    return tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(value))


def _relation(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ArgumentError(f"{where} must be one of {RELATIONS}, got {value!r}")
    normalised = " ".join(value.replace("_", " ").lower().split())
    if normalised not in RELATIONS:
        raise UnknownRelationError(f"{where}: unknown relation {value!r}; known: {', '.join(RELATIONS)}", value)
    return normalised


def _letter(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value.strip()) != 1:
        raise ArgumentError(f"{where} must be a single non-whitespace character, got {value!r}")
    return value.strip().lower()


def _language(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(f"{where} must be a language code such as 'en', got {value!r}")
    from .language import normalise_language  # loads langdetect's profiles on first use

    code = normalise_language(value)
    if code is None:
        from .language import supported_languages

        known = ", ".join(sorted(supported_languages()))
        raise ArgumentError(f"{where}: {value!r} is not a language langdetect can detect; supported: {known}")
    return code


def _ignored(value: Any, where: str) -> None:
    return None


_COERCERS: dict[str, Callable[[Any, str], Any]] = {
    "count": _count,
    "positive": _positive,
    "text": _text,
    "raw_text": _raw_text,
    "word": _word,
    "words": _words,
    "relation": _relation,
    "letter": _letter,
    "language": _language,
    "ignored": _ignored,
}


def compare(actual: int, relation: str, threshold: int) -> bool:
    """IFEval's comparison: ``less than`` is ``actual < threshold``, ``at least`` is ``actual >= threshold``."""
    if relation == LESS_THAN:
        return actual < threshold
    if relation == AT_LEAST:
        return actual >= threshold
    raise UnknownRelationError(f"unknown relation {relation!r}; known: {', '.join(RELATIONS)}", relation)
