"""Pins template application: the paper's defaults, guarded prefix rewrite, idempotence."""

from __future__ import annotations

from m2rl_slime.data.config import PromptTemplate
from m2rl_slime.data.templates import DEFAULT_TEMPLATES, MATH_INSTRUCTION, render


def test_math_default_prepends_the_answer_line_instruction_once():
    once = render(DEFAULT_TEMPLATES["math"], "What is 1+1?")
    assert once == MATH_INSTRUCTION + "What is 1+1?"
    assert "Answer: $Answer" in once
    assert render(DEFAULT_TEMPLATES["math"], once) == once


def test_science_rewrites_only_a_real_prefix():
    t = DEFAULT_TEMPLATES["science"]
    assert render(t, "Answer the following multiple choice question. Q?") == (
        "Answer the following multiple choice question step by step. Q?"
    )
    other = "You should output your final response letter inside \\boxed{} ... Q?"
    assert render(t, other) == other  # M2RL sliced 47 characters off such prompts


def test_user_braces_are_not_format_fields():
    t = PromptTemplate("Task: {prompt}\nEnd")
    assert render(t, "f(x) = {x | x > 0} and {prompt}") == "Task: f(x) = {x | x > 0} and {prompt}\nEnd"
