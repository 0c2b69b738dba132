"""Final-answer extraction: boxes (one brace-matched pass), the box group of a final answer, answer statements.

The table `data/extract_cases.jsonl` pins each rule of docs/rewards_math.md with one example; the cases come
from the failure modes of math-verify, slime's and M2RL's extractors and policy outputs (retractions,
one box per solution, remarks after the answer).
"""

import json
from pathlib import Path

import pytest

from m2rl_slime.data.evalsets import last_boxed as eval_last_boxed
from m2rl_slime.rewards.answer_extract import (
    cut_remark,
    final_answer,
    final_boxes,
    last_answer_statement,
    last_boxed,
    strip_math_delimiters,
)

CASES = [
    json.loads(line) for line in (Path(__file__).parent / "data" / "extract_cases.jsonl").read_text().splitlines()
]


@pytest.mark.parametrize("case", CASES, ids=[c["why"][:60] for c in CASES])
def test_extraction_table(case):
    found = final_answer(case["text"])
    if case["answer"] is None:
        assert found is None
        return
    assert (found.text, found.source) == (case["answer"], case["source"])
    assert list(found.items) == case.get("items", [])


def test_statements_can_be_switched_off():
    assert final_answer("\\boxed{1}\nAnswer: 2", statements=False).text == "1"
    assert final_answer("Answer: 2", statements=False) is None


def test_statement_keeps_the_raw_content_for_letter_rules():
    found = last_answer_statement("Answer: A, B, C, D (one of these is correct)")
    assert found.text == "A, B, C, D" and found.raw == "A, B, C, D (one of these is correct)"


def test_box_group_is_read_inside_a_span():
    text = "\\boxed{9} Answer: \\boxed{1} and \\boxed{2}"
    assert [b.content for b in final_boxes(text, text.index("Answer"))] == ["1", "2"]
    assert [b.content for b in final_boxes(text)] == ["1", "2"]


def test_cut_remark_variants():
    assert cut_remark("x = 2, so y = 3") == "x = 2"
    assert cut_remark("7 \u2014 the largest") == "7"
    assert cut_remark("5 (in cm)") == "5"
    assert cut_remark("f(x) (approx)") == "f(x) (approx)"
    assert cut_remark("\\text{yes, because}") == "\\text{yes, because}"


def test_strip_math_delimiters():
    assert strip_math_delimiters(" $$x$$. ") == "x"
    assert strip_math_delimiters("\\(\\frac{1}{2}\\)") == "\\frac{1}{2}"
    assert strip_math_delimiters("$a$ and $b$") == "a$ and $b"  # one outer pair only


def test_eval_set_preparation_shares_the_scanner():
    assert eval_last_boxed("\\boxed{a{b}c} and \\boxed{d}") == "d"
    assert eval_last_boxed("\\boxed{open") is None
    text = "solution ... \\boxed{12} ... " + "\\boxed{" * 5000
    assert eval_last_boxed(text) == last_boxed(text).text == "12"
