"""`summarize_bfcl(items)`: per-category accuracies, the grouped sub-scores and the overall BFCL v3 score.

Two published definitions of BFCL v3's overall score exist, and both are reported:

- **evalscope** (``bfcl_v3``), the one our ``overall`` follows because every part of it can be computed
  offline: ``simple_ast`` = mean(simple, java, javascript); ``non_live`` = mean(mean(simple_ast, multiple,
  parallel, parallel_multiple), irrelevance); ``live`` = item-weighted mean of the six live categories;
  ``multi_turn`` = mean(base, item-weighted mean(miss_func, miss_param, long_context)); overall =
  mean(non_live, live, multi_turn).
- **nvidia-bfcl** (the leaderboard's v3 table): ``non_live`` = mean of nine parts (simple_ast, multiple,
  parallel, parallel_multiple, four exec parts, irrelevance), ``live`` as above, ``multi_turn`` = mean of
  the four categories, overall = mean of the three. The exec parts need outside APIs and are unavailable
  offline; nvidia-bfcl would count them as 0. ``overall_nvidia_bfcl_without_exec`` drops them instead
  (non_live = mean of the five available parts) and is reported next to ours, never as the overall.

Means marked "mean" are unweighted over their parts; a part that is missing from `items` makes every score
that needs it None (never a 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .categories import AST_CATEGORIES, MULTI_TURN_CATEGORIES, UNAVAILABLE, category_of_id

OVERALL_FORMULA = (
    "evalscope bfcl_v3: mean(non_live, live, multi_turn); non_live = mean(mean(mean(simple, java, javascript), "
    "multiple, parallel, parallel_multiple), irrelevance); live = item-weighted mean of live_simple, live_multiple, "
    "live_parallel, live_parallel_multiple, live_irrelevance, live_relevance; multi_turn = mean(multi_turn_base, "
    "item-weighted mean(multi_turn_miss_func, multi_turn_miss_param, multi_turn_long_context))"
)
NVIDIA_FORMULA = (
    "nvidia-bfcl v3 without its unavailable exec parts: mean(non_live, live, multi_turn); non_live = "
    "mean(mean(simple, java, javascript), multiple, parallel, parallel_multiple, irrelevance); live as above; "
    "multi_turn = mean of the four multi-turn categories"
)
Part = tuple[float, int] | None  # (accuracy, items)


def _mean(parts: Sequence[Part]) -> Part:
    if any(p is None for p in parts):
        return None
    return sum(p[0] for p in parts) / len(parts), sum(p[1] for p in parts)


def _weighted(parts: Sequence[Part]) -> Part:
    if any(p is None for p in parts):
        return None
    n = sum(p[1] for p in parts)
    return (sum(p[0] * p[1] for p in parts) / n if n else 0.0), n


def _per_category(items: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = defaultdict(list)
    for item in items:
        category = item.get("category") or category_of_id(str(item.get("uid", "")))
        if category is None:
            raise ValueError(f"item {item.get('uid')!r} has no BFCL category (no category field, unknown id prefix)")
        if "mean" in item:
            mean = float(item["mean"])
        else:
            mean = float(item["correct"]) / float(item["n"]) if item.get("n") else 0.0
        scores[category].append(mean)
    return scores


def summarize_bfcl(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """BFCL v3 scores from per-item records (``items.jsonl``: ``uid``, ``mean`` or ``correct``/``n``).

    The category of an item is its ``category`` field, else the prefix of its BFCL id.

    Returns:
        ``categories`` ({name: {accuracy, n}}), ``missing`` (v3 categories without items), ``unavailable``
        (exec/rest/sql/chatable and why), ``subscores`` (simple_ast, non_live_ast, non_live, live_ast,
        live_hallucination, live, multi_turn_base, multi_turn_augmented, multi_turn; None when a part is
        missing), ``overall`` and ``overall_formula`` (evalscope's definition), ``overall_nvidia_bfcl_without_exec``
        and its formula.
    """
    scores = _per_category(items)
    part: dict[str, Part] = {c: (sum(v) / len(v), len(v)) if v else None for c, v in scores.items()}
    for name in (*AST_CATEGORIES, *MULTI_TURN_CATEGORIES):
        part.setdefault(name, None)
    simple_ast = _mean([part["simple"], part["java"], part["javascript"]])
    non_live_ast = _mean([simple_ast, part["multiple"], part["parallel"], part["parallel_multiple"]])
    live_ast = _weighted(
        [part[c] for c in ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")]
    )
    live_hallucination = _weighted([part["live_irrelevance"], part["live_relevance"]])
    augmented = _weighted([part[c] for c in MULTI_TURN_CATEGORIES[1:]])
    sub: dict[str, Part] = {
        "simple_ast": simple_ast,
        "non_live_ast": non_live_ast,
        "non_live": _mean([non_live_ast, part["irrelevance"]]),
        "live_ast": live_ast,
        "live_hallucination": live_hallucination,
        "live": _weighted([live_ast, live_hallucination]),
        "multi_turn_base": part["multi_turn_base"],
        "multi_turn_augmented": augmented,
        "multi_turn": _mean([part["multi_turn_base"], augmented]),
    }
    nvidia_non_live = _mean(
        [simple_ast, part["multiple"], part["parallel"], part["parallel_multiple"], part["irrelevance"]]
    )
    nvidia = _mean([nvidia_non_live, sub["live"], _mean([part[c] for c in MULTI_TURN_CATEGORIES])])
    overall = _mean([sub["non_live"], sub["live"], sub["multi_turn"]])
    value = lambda p: None if p is None else p[0]  # noqa: E731
    return {
        "categories": {c: {"accuracy": p[0], "n": p[1]} for c, p in part.items() if p is not None},
        "missing": [c for c in (*AST_CATEGORIES, *MULTI_TURN_CATEGORIES) if part[c] is None],
        "unavailable": dict(UNAVAILABLE),
        "subscores": {name: value(p) for name, p in sub.items()},
        "overall": value(overall),
        "overall_formula": OVERALL_FORMULA,
        "overall_nvidia_bfcl_without_exec": value(nvidia),
        "nvidia_formula": NVIDIA_FORMULA,
    }
