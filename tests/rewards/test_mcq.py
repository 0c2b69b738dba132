"""Science verifier: letters from the final answer only, valid letters, hedges, short answers.

The pitfalls come from slime's gpqa.py and M2RL's variant, openbench #348, NeMo-Skills PR #1526,
simple-evals #33 and lm-eval PR #4188, and from policy outputs (hedge lists, lowercase letters);
the table is data/mcq_cases.jsonl; the rows from NeMo-Gym's mcqa/gpqa examples.
"""

import json
from pathlib import Path

import pytest

from m2rl_slime.rewards.mcq import correct_letter, extract_letter, valid_letters, verify
from m2rl_slime.rewards.result import Reason

ABCD = {"valid_letters": "ABCD"}


CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "mcq_cases.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["why"][:60] for c in CASES])
def test_letter_table(case):
    result = verify(case["response"], case["label"], ABCD)
    assert result.reason.value == case["reason"], (result, case["why"])


def test_valid_letters_sources():
    assert valid_letters({"valid_letters": ["A", "B", "C"]}, "AB") == ("ABC", "valid_letters")
    assert valid_letters({"options": [{"A": "x"}, {"B": "y"}, {"C": "z"}]}, "AB") == ("ABC", "options")
    assert valid_letters({"choices": ["x", "y", "z", "w", "v"]}, "AB") == ("ABCDE", "choices")
    prompt = "Question?\nA) one\nB) two\nC) three\nD) four\nE) five"
    assert valid_letters({"prompt_text": prompt}, "AB") == ("ABCDE", "prompt")
    assert valid_letters({}, "ABCDEFGHIJ") == ("ABCDEFGHIJ", "default")


def test_correct_letter_forms():
    options = {"options": [{"A": "Karyotyping"}, {"B": "Polymerase Chain Reaction (PCR)"}]}
    assert correct_letter("b", {}, "ABCD") == "B"
    assert correct_letter(2, {}, "ABCD") == "C"
    assert correct_letter("Polymerase  chain reaction (PCR)", options, "AB") == "B"
    assert correct_letter("A", {"correct_letter": "D"}, "ABCD") == "D"


def test_label_letter_outside_valid_letters_is_bad_label():
    assert verify("\\boxed{E}", "E", ABCD).reason is Reason.BAD_LABEL


def test_missing_label_is_bad_label():
    assert verify("\\boxed{A}", None, ABCD).reason is Reason.BAD_LABEL


def test_short_numeric_answer_goes_through_math():
    result = verify("\\boxed{3.2 \\times 10^{5}}", "3.2e5", {})
    assert result.reason is Reason.OK and result.details["graded_as"] == "short_answer"


def test_extract_letter_wrappers():
    assert extract_letter("\\textbf{B}") == ("B", False)
    assert extract_letter("**C**") == ("C", False)
    assert extract_letter("B, because") == ("B", False)
    assert extract_letter("Because") == (None, False)
    assert extract_letter("$\\mathrm{b}$") == ("B", False)
    assert extract_letter("A, B") == (None, True)


def test_hedge_details_and_invalid_letters():
    result = verify("Answer: A or B", "A", ABCD)
    assert result.score == 0.0 and result.details["letter"] is None
    assert verify("Answer: F or G", "A", {"valid_letters": "ABCDEFG"}).reason is Reason.AMBIGUOUS
    assert verify("Answer: I", "I", {}).reason is Reason.OK  # default letters A-J include I


def test_nemo_gym_rows(example_data):
    """The mcqa and GPQA-Diamond example rows, with answers in each row's requested format."""
    for name in ("mcqa.jsonl", "gpqa_diamond.jsonl"):
        for line in (example_data / "nemo_gym_examples" / name).read_text().splitlines():
            row = json.loads(line)
            metadata = {"options": row["options"]}
            gold = row["expected_answer"]
            assert verify(f"reasoning...\n\\boxed{{{gold}}}", gold, metadata).reason is Reason.OK
            assert verify(f"reasoning...\nAnswer: {gold}", gold, metadata).reason is Reason.OK
            other = next(k for o in row["options"] for k in o if k != gold)
            assert verify(f"\\boxed{{{other}}}", gold, metadata).reason is Reason.WRONG
