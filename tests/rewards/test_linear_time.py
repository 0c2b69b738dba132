"""No extraction path is super-linear in the response length.

Property: for each degenerate input (repetition loops, unclosed boxes, runs of braces, digits or hedges, the
most common long outputs in RL), the CPU time (`time.process_time`, not wall clock) of a reward path on the
input scaled by 8 stays within a generous factor of 8 times the time on the base input. Linear code scales
by about 8 (less, with fixed costs); quadratic code by 64. Each path is what a pooled verifier runs on the
graded text: the `</think>` policy, the math and science verifiers, and eval-set box extraction.
"""

import time

import pytest

from m2rl_slime.data.evalsets import last_boxed as eval_last_boxed
from m2rl_slime.rewards import math_answer, mcq
from m2rl_slime.rewards.answer_extract import cut_remark
from m2rl_slime.rewards.thinking import final_segment

SCALE = 8
LIMIT = 3 * SCALE  # quadratic growth would be SCALE**2 = 64
BASE = 1200  # repeats of the hostile unit at the base size (about 7-15k characters)
ABCD = {"valid_letters": "ABCD"}

HOSTILE = {
    "unclosed_boxes": lambda n: "\\boxed{1 " * n,
    "unclosed_nested_boxes": lambda n: "\\boxed{" * n,
    "unclosed_fbox_then_box": lambda n: "\\fbox{x " * n + "\\boxed{1}",
    "open_braces_in_a_box": lambda n: "\\boxed{" + "{" * (6 * n),
    "closed_braces_in_a_box": lambda n: "\\boxed{" + "{}" * (3 * n) + "}",
    "digits_in_a_box": lambda n: "\\boxed{" + "8" * (6 * n) + "}",
    "digits_then_e": lambda n: "\\boxed{" + "1" * (6 * n) + "e}",
    "repeated_answer_lines": lambda n: "Answer: 42\n" * n,
    "answer_then_spaces": lambda n: "answer" + " " * (6 * n) + "x",
    "answer_is_run": lambda n: "answer " + "is " * (2 * n) + "x",
    "statement_long_list": lambda n: "Answer: " + "1, " * (2 * n),
    "statement_then_spaces": lambda n: "Answer: 4" + " " * (6 * n) + "x",
    "statement_open_parens": lambda n: "Answer: 4" + " (ab" * (2 * n),
    "statement_dollars": lambda n: "Answer: " + "$" * (6 * n),
    "boxes_joined_by_and": lambda n: " and ".join(["\\boxed{1}"] * n),
    "distinct_boxes_joined": lambda n: ", ".join(f"\\boxed{{{i % 97}}}" for i in range(n)),
    "labelled_boxes": lambda n: ", ".join(f"x_{i % 9} = \\boxed{{{i % 7}}}" for i in range(n)),
    "backslashes": lambda n: "\\" * (6 * n) + "\\boxed{1}",
    "dollar_run": lambda n: "$" * (6 * n),
    "bold_run": lambda n: "**" * (3 * n) + "Answer: 1",
    "letter_hedges": lambda n: "Answer: A" + " or A" * n,
    "letter_list": lambda n: "Answer: " + "A, " * (2 * n),
    "letter_boxes": lambda n: " or ".join(["\\boxed{A}"] * n),
    "end_markers": lambda n: "\\boxed{1}" + "<|im_end|> " * n,
    "nested_parens_box": lambda n: "\\boxed{" + "(" * (6 * n) + "}",
}

PATHS = {
    "math": lambda text: math_answer.verify(text, "1, 2", {}),
    "science": lambda text: mcq.verify(text, "A", ABCD),
    "think": lambda text: final_segment("</think>" + text, require_thinking=True),
    "eval_boxed": eval_last_boxed,
    "remark": cut_remark,
}


def _cpu_seconds(fn, text: str) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        fn(text)
        best = min(best, time.process_time() - start)
    return max(best, 2e-4)  # below the timer's useful resolution, a ratio means nothing


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("name", list(HOSTILE))
def test_reward_paths_are_linear(name, path):
    make, fn = HOSTILE[name], PATHS[path]
    small, large = make(BASE), make(BASE * SCALE)
    fn(small)  # warm caches and imports
    ratio = _cpu_seconds(fn, large) / _cpu_seconds(fn, small)
    assert ratio < LIMIT, f"{path} on {name}: x{SCALE} input took x{ratio:.1f} CPU time"


def test_hostile_inputs_are_graded_not_raised():
    for name, make in HOSTILE.items():
        text = make(BASE)
        assert math_answer.verify(text, "1", {}).reason.value in {"ok", "wrong", "no_answer", "parse_error"}, name
        assert mcq.verify(text, "A", ABCD).reason.value in {"ok", "wrong", "no_answer", "ambiguous"}, name
