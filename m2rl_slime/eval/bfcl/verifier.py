"""The ``bfcl`` reward domain: one response to one BFCL AST, irrelevance or relevance entry -> `Result`.

Pure and CPU-bound (it runs in the reward router's worker pool). The response is decoded like BFCL's Qwen FC
handler does (`calls`), then:

- AST categories: `ast_checker.check` against the entry's possible answers; a response that does not decode
  scores 0 with ``parse_error``, one without any call with ``no_answer``, any other mismatch with ``wrong``
  (``details.error_type`` carries BFCL's own error type, e.g. ``value_error:string``);
- irrelevance categories: correct when the response makes no call (or does not decode, as in BFCL);
- ``live_relevance``: correct when the response makes at least one call.

Multi-turn rows cannot be scored from one response: they need `episode.run_episode` (a configuration error
here, raised so that it is never a silent 0). Malformed rows score 0 with ``bad_label``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError, LabelError
from ...rewards.result import Reason, Result
from .ast_checker import CheckerCrash, check
from .calls import DecodeError, answer_text, decode_ast
from .categories import CATEGORIES, Category


def _category(metadata: Mapping[str, Any]) -> Category:
    name = metadata.get("category")
    if name not in CATEGORIES:
        raise LabelError(f"metadata.category is {name!r}, not a BFCL category ({', '.join(CATEGORIES)})")
    return CATEGORIES[name]


def _ast_inputs(metadata: Mapping[str, Any]) -> tuple[list, list]:
    functions, possible = metadata.get("functions"), metadata.get("possible_answer")
    if not isinstance(functions, list) or not all(isinstance(f, Mapping) for f in functions):
        raise LabelError("metadata.functions must be the entry's list of BFCL function docs")
    if not isinstance(possible, list) or not all(isinstance(p, Mapping) and len(p) == 1 for p in possible):
        raise LabelError("metadata.possible_answer must be a list of {function: {param: [values]}} objects")
    return functions, possible


def _relevance(category: Category, calls: list | None, error: str | None) -> Result:
    made_call = bool(calls)
    if made_call == (category.kind == "relevance"):
        return Result.correct(category=category.name, calls=len(calls or ()))
    if category.kind == "irrelevance":
        return Result.fail(
            Reason.WRONG, category=category.name, error_type="irrelevance_error:decoder_success", calls=len(calls)
        )
    return Result.fail(
        Reason.NO_ANSWER, category=category.name, error_type="relevance_error:decoder_failed", error=error or ""
    )


def verify(response: str, label: Any, metadata: Mapping[str, Any], *, config: Any = None) -> Result:
    """Score one response of a BFCL AST / irrelevance / relevance row (see the module docstring).

    Args:
        response: The full model response (reasoning included; only the text after the last ``</think>``
            is decoded, as in BFCL).
        label: Unused (BFCL rows carry their possible answers in the metadata).
        metadata: The prepared row's metadata: ``category``, ``functions``, ``possible_answer`` and, when the
            prompt's tool names had dots replaced, ``underscore_to_dot: true``.
        config: Unused; accepted for the reward router's calling convention.

    Raises:
        ConfigError: a multi-turn row (it is scored by the episode driver, never from a single response).
    """
    try:
        category = _category(metadata)
        if category.kind == "multi_turn":
            raise ConfigError(
                f"BFCL {category.name} rows are multi-turn episodes: run them with the eval runner's BFCL episode "
                "driver, or prepare the in-training eval set with --categories ast"
            )
        text = answer_text(response)
        try:
            calls, error = decode_ast(text), None
        except DecodeError as exc:
            calls, error = None, str(exc)
        if category.kind != "ast":
            return _relevance(category, calls, error)
        functions, possible = _ast_inputs(metadata)
        if calls is None:
            return Result.fail(
                Reason.PARSE_ERROR, category=category.name, error_type="ast_decoder:decoder_failed", error=error
            )
        verdict = check(
            functions,
            calls,
            possible,
            category.name,
            category.language,
            dotted=bool(metadata.get("underscore_to_dot")),
        )
    except LabelError as exc:
        return Result.fail(Reason.BAD_LABEL, error=str(exc)[:500])
    except CheckerCrash as exc:
        return Result.fail(Reason.WRONG, category=category.name, error_type="checker_crash", error=str(exc)[:500])
    if verdict.valid:
        return Result.correct(category=category.name, calls=len(calls))
    reason = Reason.NO_ANSWER if not calls else Reason.WRONG
    return Result.fail(reason, category=category.name, error_type=verdict.error_type, error=verdict.error[:500])
