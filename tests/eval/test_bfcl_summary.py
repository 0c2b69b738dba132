"""The BFCL overall score: both published formulas, computed by hand on a small table."""

from __future__ import annotations

import pytest

from m2rl_slime.eval.bfcl.summary import summarize_bfcl

# category -> (accuracy, items)
TABLE = {
    "simple": (0.9, 10), "java": (0.6, 5), "javascript": (0.4, 5), "multiple": (0.75, 4), "parallel": (0.5, 4),
    "parallel_multiple": (0.5, 2), "irrelevance": (1.0, 5), "live_simple": (0.5, 4), "live_multiple": (0.25, 8),
    "live_parallel": (1.0, 2), "live_parallel_multiple": (0.0, 2), "live_irrelevance": (0.75, 4),
    "live_relevance": (1.0, 1), "multi_turn_base": (0.4, 5), "multi_turn_miss_func": (0.2, 5),
    "multi_turn_miss_param": (0.0, 2), "multi_turn_long_context": (0.6, 5),
}  # fmt: skip


def _items(table: dict) -> list[dict]:
    items = []
    for category, (accuracy, n) in table.items():
        correct = round(accuracy * n)
        assert correct == accuracy * n
        for i in range(n):
            uid = f"{category}_{i}" if not category.startswith("live") else f"{category}_{i}-0-0"
            items.append(
                {"benchmark": "bfcl", "uid": uid, "n": 1, "correct": int(i < correct), "mean": float(i < correct)}
            )
    return items


def test_both_formulas_by_hand():
    summary = summarize_bfcl(_items(TABLE))
    sub = summary["subscores"]
    simple_ast = (0.9 + 0.6 + 0.4) / 3
    non_live_ast = (simple_ast + 0.75 + 0.5 + 0.5) / 4
    assert sub["simple_ast"] == pytest.approx(simple_ast) and sub["non_live_ast"] == pytest.approx(non_live_ast)
    assert sub["non_live"] == pytest.approx((non_live_ast + 1.0) / 2)
    live = (2 + 2 + 2 + 0 + 3 + 1) / 21  # every live item weighs the same
    assert sub["live"] == pytest.approx(live)
    assert sub["live_ast"] == pytest.approx(6 / 16) and sub["live_hallucination"] == pytest.approx(4 / 5)
    augmented = (1 + 0 + 3) / 12
    assert sub["multi_turn_augmented"] == pytest.approx(augmented)
    assert sub["multi_turn"] == pytest.approx((0.4 + augmented) / 2)
    assert summary["overall"] == pytest.approx(((non_live_ast + 1.0) / 2 + live + (0.4 + augmented) / 2) / 3)
    nvidia_non_live = (simple_ast + 0.75 + 0.5 + 0.5 + 1.0) / 5
    nvidia_multi_turn = (0.4 + 0.2 + 0.0 + 0.6) / 4
    assert summary["overall_nvidia_bfcl_without_exec"] == pytest.approx(
        (nvidia_non_live + live + nvidia_multi_turn) / 3
    )
    assert summary["categories"]["java"] == {"accuracy": pytest.approx(0.6), "n": 5} and summary["missing"] == []
    assert set(summary["unavailable"]) == {"exec_simple", "exec_multiple", "exec_parallel", "exec_parallel_multiple",
                                           "rest", "sql", "chatable"}  # fmt: skip
    assert summary["overall_formula"].startswith("evalscope") and "nvidia-bfcl" in summary["nvidia_formula"]


def test_missing_parts_give_none_never_zero():
    table = {k: v for k, v in TABLE.items() if not k.startswith("multi_turn")}
    summary = summarize_bfcl(_items(table))
    assert summary["overall"] is None and summary["subscores"]["multi_turn"] is None
    assert summary["subscores"]["live"] is not None and len(summary["missing"]) == 4


def test_categories_from_v4_ids_and_fields():
    items = [{"uid": "simple_python_3", "mean": 1.0}, {"uid": "whatever", "category": "java", "correct": 1, "n": 2}]
    assert summarize_bfcl(items)["categories"] == {
        "simple": {"accuracy": 1.0, "n": 1},
        "java": {"accuracy": 0.5, "n": 1},
    }
    with pytest.raises(ValueError, match="no BFCL category"):
        summarize_bfcl([{"uid": "nothing", "mean": 1.0}])
