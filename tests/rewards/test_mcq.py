"""Science verifier: strict, case-sensitive letter extraction (last box or Answer line), valid letters, short answers.

The pitfalls come from reward_anchors.md §5 (slime gpqa.py and M2RL's variant, openbench #348,
NeMo-Skills PR #1526, simple-evals #33, lm-eval PR #4188); the rows from NeMo-Gym's mcqa/gpqa examples.
"""

import json

import pytest

from m2rl_slime.rewards.mcq import correct_letter, extract_letter, valid_letters, verify
from m2rl_slime.rewards.result import Reason

ABCD = {"valid_letters": "ABCD"}


@pytest.mark.parametrize(
    "response,label,expected",
    [
        ("The final answer is \\boxed{B}.", "B", Reason.OK),  # slime's gpqa.py reads "I" here
        ("Looking at the answer choices, the correct one is B.\nAnswer: B", "B", Reason.OK),
        ("The answer is a bit subtle.\nAnswer: B", "B", Reason.OK),
        ("So the answer is B. Wait, no.\nAnswer: D", "D", Reason.OK),  # last statement wins
        ("Antwort:\n\nAnswer: C", "C", Reason.OK),
        ("Answer: $B$", "B", Reason.OK),  # the literal prompt form
        ("Answer: (B)", "B", Reason.OK),
        ("\\boxed{\\text{C}}", "C", Reason.OK),
        ("\\boxed{C: 10^-4 eV}", "C", Reason.OK),
        ("\\boxed{B}\nAnswer: C", "C", Reason.OK),
        ("Answer: D", "B", Reason.WRONG),
        ("The answer is clearly B.", "B", Reason.NO_ANSWER),  # no box, no Answer line
        ("Answer: a", "A", Reason.NO_ANSWER),  # case-sensitive: the article "a" is not a letter
        ("Answer: I think it is B", "B", Reason.NO_ANSWER),
        ("\\boxed{A, B}", "A", Reason.AMBIGUOUS),
        ("Answer: A or B", "A", Reason.AMBIGUOUS),
        ("\\boxed{E}", "B", Reason.NO_ANSWER),  # E is not a valid letter of an ABCD task
    ],
)
def test_letter_grading(response, label, expected):
    assert verify(response, label, ABCD).reason is expected


def test_box_with_other_letters_inside_math_does_not_leak():
    response = "We get \\boxed{\\langle H\\rangle \\ll \\Delta E}\nAnswer: D"
    assert verify(response, "D", ABCD).reason is Reason.OK


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
