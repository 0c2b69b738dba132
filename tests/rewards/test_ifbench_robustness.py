"""Hostile responses through all 58 IFBench checkers: CPU time grows linearly with the length.

Each input is built at n = 4k and 4n = 16k characters; the CPU time (``time.process_time``, best of three, so
other processes on the machine do not count) of running every checker on the 4n version must stay
within 6x that of the n version plus a small constant. A quadratic scan gives 16x. The kwargs of each
checker are those of its first case in data/ifbench_cases.jsonl.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from m2rl_slime.rewards.ifbench import IFBENCH_REGISTRY
from m2rl_slime.rewards.ifeval.text import Doc

CASES_PATH = Path(__file__).parent / "data" / "ifbench_cases.jsonl"


def _kwargs() -> dict[str, dict]:
    first: dict[str, dict] = {}
    for line in CASES_PATH.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        first.setdefault(case["id"], case["kwargs"])
    return first


BOUND = {i: IFBENCH_REGISTRY[i].bind(kw, i) for i, kw in _kwargs().items()}

# Each builder returns a response of about `n` characters; all end with a letter so none is blank.
HOSTILE = {
    "newlines": lambda n: "\n" * n + "x",
    "blank_lines_with_spaces": lambda n: " \n" * (n // 2) + "x",
    "dots": lambda n: "." * n + "x",
    "dot_space": lambda n: ". " * (n // 2) + "x",
    "initials": lambda n: "A. " * (n // 3) + "x",
    "acronyms": lambda n: "U.S. He " * (n // 8) + "x",
    "double_quotes": lambda n: '"' * n + "x",
    "single_quotes": lambda n: "'" * n + "x",
    "alternating_quotes": lambda n: "\"'" * (n // 2) + "x",
    "open_brackets": lambda n: "([{" * (n // 3) + "x",
    "closing_brackets": lambda n: ")" * n + "x",
    "stars_dashes": lambda n: "*-" * (n // 2) + "x",
    "question_labels": lambda n: "Question 1\n" * (n // 11) + "x",
    "newlines_then_label": lambda n: "\n" * n + "Question 1 x",
    "csv_quoted_field": lambda n: "ProductID,Category,Brand,Price,Stock\n" + '"' + "&" * n + "x",
    "italic_tags": lambda n: "<i>" * (n // 3) + "x",
    "one_long_word": lambda n: "a" * n,
    "many_words": lambda n: "ab " * (n // 3) + "x",
    "interrobangs": lambda n: "?!" * (n // 2) + "x",
    "commas": lambda n: "," * n + "x",
    "digits": lambda n: "1 " * (n // 2) + "x",
    "emoji": lambda n: "\U0001f600. " * (n // 3) + "x",
    "indented_lines": lambda n: "\n".join(" " * (i % 50) + "x" for i in range(n // 26)),
    "clitics": lambda n: "don't " * (n // 6) + "x",
}


def _cpu_seconds(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        doc = Doc(text)
        for instruction_id, checker in IFBENCH_REGISTRY.items():
            checker.check(doc, **BOUND[instruction_id])
        best = min(best, time.process_time() - start)
    return best


def test_every_checker_has_kwargs_from_the_case_table():
    assert set(BOUND) == set(IFBENCH_REGISTRY)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_linear(name):
    build = HOSTILE[name]
    small, large = _cpu_seconds(build(4_000)), _cpu_seconds(build(16_000))
    assert large <= 6 * small + 0.03, f"{name}: {small:.4f}s at 4k chars, {large:.4f}s at 16k chars"
