"""Instruction-following (IF) verifier: IFEvalG's 54 and IFBench's 58 constraint types, fail-closed.

The reward is 1.0 iff every constraint of the sample is followed (M2RL's setting); the fraction of
constraints followed is always reported and can be the reward (``mode: fraction``, open-instruct's
setting). Constraints are scored per position, so a repeated id counts twice. An unknown instruction
id or comparison word scores 0 with ``unknown_instruction``; malformed kwargs or an empty instruction
list score 0 with ``bad_label`` (never a random kwarg, never a vacuous 1.0). Every constraint is
judged both strict and loose (IFEval's relaxed variants) and both verdicts are in ``details``, so an
eval summary can report IFEval's four numbers; the reward uses the configured one (strict by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import LabelError
from .ifbench.registry import IFBENCH_REGISTRY
from .ifeval.params import Checker, UnknownRelationError
from .ifeval.registry import REGISTRY
from .ifeval.source import read_constraints
from .ifeval.text import Doc
from .result import Reason, Result

# IFEvalG's and IFBench's ids are disjoint (tested), so one table serves rows of either benchmark.
CHECKERS: dict[str, Checker] = {**REGISTRY, **IFBENCH_REGISTRY}


@dataclass(frozen=True, slots=True)
class IFConfig:
    """Settings of the ``if`` section of ``m2rl_reward``.

    Attributes:
        mode: ``all`` scores 1.0 only when every constraint is followed (the paper's reward);
            ``fraction`` scores the fraction followed.
        loose: Use IFEval's loose variant: a constraint counts as followed if it holds on any of eight
            relaxed versions of the response (first and/or last line removed, ``*`` removed).
    """

    mode: Literal["all", "fraction"] = "all"
    loose: bool = False


@dataclass(frozen=True, slots=True)
class _Constraint:
    instruction_id: str
    checker: Checker
    args: Mapping[str, Any]


class _UnknownInstruction(Exception):
    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.details = details


def _bind(pairs: list[tuple[str, dict[str, Any]]]) -> list[_Constraint]:
    """Look up and validate every constraint before any is checked (a sample is all or nothing)."""
    constraints = []
    for position, (instruction_id, kwargs) in enumerate(pairs):
        checker = CHECKERS.get(instruction_id)
        if checker is None:
            raise _UnknownInstruction(
                f"unknown instruction id {instruction_id!r} at position {position}",
                instruction_id=instruction_id,
                position=position,
            )
        try:
            args = checker.bind(kwargs, instruction_id)
        except UnknownRelationError as exc:
            raise _UnknownInstruction(
                f"{exc} (position {position})", instruction_id=instruction_id, position=position, relation=exc.relation
            ) from None
        except LabelError as exc:
            raise LabelError(f"{exc} (position {position})") from None
        constraints.append(_Constraint(instruction_id, checker, args))
    return constraints


def loose_variants(response: str) -> list[str]:
    """IFEval's eight loose variants: as is, without the first/last/both lines, each also without ``*``."""
    lines = response.split("\n")
    base = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return base + [variant.replace("*", "") for variant in base]


def _evaluate(constraints: list[_Constraint], response: str) -> tuple[list[bool], list[bool]]:
    """(strict, loose) verdict per constraint; the loose variants are built only if a strict check fails."""
    doc = Doc(response)
    strict = [c.checker.check(doc, **c.args) for c in constraints]
    if all(strict):
        return strict, list(strict)
    relaxed = [Doc(v) for v in loose_variants(response)[1:] if v.strip()]
    loose = [ok or any(c.checker.check(d, **c.args) for d in relaxed) for c, ok in zip(constraints, strict)]
    return strict, loose


def verify(response: str, label: Any, metadata: Mapping[str, Any], *, config: IFConfig | None = None) -> Result:
    """Score `response` against the sample's IF constraints.

    Args:
        response: The graded text (thinking already removed by the router).
        label: Unused when `metadata` carries ``instruction_id_list``; otherwise the constraints, as a
            dict, a one-item list, or a JSON / Python-literal string of either (open-instruct's
            ``[{"instruction_id": [...], "kwargs": [...]}]``).
        metadata: The sample metadata: ``instruction_id_list``, ``kwargs`` (aligned list of dicts)
            and optionally ``prompt_text`` (accepted, not needed by any check: prompts to repeat are kwargs).
        config: `IFConfig`; defaults to strict, all-or-nothing.

    Returns:
        A `Result`: ``ok`` when every constraint is followed, else ``wrong`` (score 0, or the fraction
        in ``fraction`` mode); ``bad_label``, ``unknown_instruction`` or ``empty_response`` with score 0.
        Details carry ``constraints`` (``[{"id", "followed", "strict", "loose"}]`` per position;
        ``followed`` is the configured verdict), ``followed``, ``total``, ``fraction``,
        ``strict_followed`` and ``loose_followed``.

    Example:
        >>> verify("Hello there", None, {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}).score
        1.0
    """
    config = config or IFConfig()
    try:
        constraints = _bind(read_constraints(label, metadata))
    except _UnknownInstruction as exc:
        return Result.fail(Reason.UNKNOWN_INSTRUCTION, error=str(exc), **exc.details)
    except LabelError as exc:
        return Result.fail(Reason.BAD_LABEL, error=str(exc))
    if not isinstance(response, str) or not response.strip():
        return Result.fail(Reason.EMPTY_RESPONSE, total=len(constraints))
    if "\r" in response:
        response = response.replace("\r\n", "\n")  # Windows line ends: paragraphs split at "\n\n"
    strict, loose = _evaluate(constraints, response)
    followed = loose if config.loose else strict
    count = sum(followed)
    fraction = count / len(constraints)
    details = {
        "constraints": [
            {"id": c.instruction_id, "followed": f, "strict": s, "loose": lo}
            for c, f, s, lo in zip(constraints, followed, strict, loose)
        ],
        "followed": count,
        "total": len(constraints),
        "fraction": fraction,
        "strict_followed": sum(strict),
        "loose_followed": sum(loose),
    }
    all_followed = count == len(constraints)
    score = fraction if config.mode == "fraction" else float(all_followed)
    return Result(score, Reason.OK if all_followed else Reason.WRONG, details)
