"""Prompt templates: the paper's defaults (M2RL ``process_rl_data.py``) and how a template is applied.

Training (``prepare``):

- math: the paper's instruction is prepended. It asks for a final ``Answer: $Answer`` line, which our
  math verifier accepts (it takes a final ``Answer:`` line or ``\\boxed{}``; M2RL's grader scored it 0).
- science: a leading "Answer the following multiple choice question." becomes "... step by step." as in
  the paper, but only when the prompt really starts with it (the paper sliced blindly, which cuts the
  first 47 characters of stem_mcqa prompts that start differently).
- if, code, agent: unchanged, as in the paper.

Evaluation (``prepare-eval``, raw benchmark rows): AIME gets the paper's eval instruction (boxed answer
on the ``Answer:`` line), GPQA the paper's letter format over options shuffled with a seed; LiveCodeBench
and HLE prompts follow their official harnesses' behaviour in this project's own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._dotted import load_dotted
from ..domains import SPECS
from .config import PROMPT_PLACEHOLDER, PromptTemplate

MATH_INSTRUCTION = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
MCQ_PREFIX = "Answer the following multiple choice question."
MCQ_PREFIX_STEPWISE = "Answer the following multiple choice question step by step."

# The defaults that `DomainSpec.template` points at (if, code and agent have none: prompts unchanged).
MATH_TEMPLATE = PromptTemplate(template=MATH_INSTRUCTION + PROMPT_PLACEHOLDER)
SCIENCE_TEMPLATE = PromptTemplate(replace_prefix={MCQ_PREFIX: MCQ_PREFIX_STEPWISE})

EVAL_MATH_TEMPLATE = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: \\boxed{$Answer} (without quotes) where $Answer is the answer to the problem.\n\n" + PROMPT_PLACEHOLDER
)
GPQA_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
    "answering.\n\n{question}\n\n{choices}"
)
IDENTITY = PromptTemplate()

# LiveCodeBench (code generation): a system instruction, then the problem, then either its starter code
# (LeetCode-style functional problems) or the stdin/stdout instruction, each with a fenced Python block
# to fill in. Written for this project after the official runner's prompt behaviour (docs/eval_sets.md).
LCB_SYSTEM = (
    "You are a skilled Python programmer. Given a problem statement, you write a correct Python program "
    "that meets the specification and passes every test."
)
LCB_STARTER_FORMAT = (
    "Complete the starter code below to solve the problem, and put your whole solution in one fenced Python "
    "code block."
)
LCB_STDIN_FORMAT = (
    "Write a program that reads the input from standard input, solves the problem and writes the answer to "
    "standard output (do not test it on the sample inputs yourself). Put the whole program in one fenced "
    "Python code block, as below."
)
LCB_USER = "### Problem\n{question}\n\n### Format\n{format}\n```python\n{code}\n```\n\n### Answer\n{answer}\n"
LCB_ANSWER = "Reply with your solution in the format above, as a fenced Python code block."
LCB_EMPTY_CODE = "# your code here"

# Humanity's Last Exam: the official harness's system instruction asks for an explanation, a final
# answer line and a confidence line; the judge (m2rl_slime.eval.hle_judge) reads the confidence.
HLE_EXACT_SYSTEM = (
    "Write your response in this format:\n"
    "Explanation: {the reasoning behind your final answer}\n"
    "Exact Answer: {your final answer, as short as possible}\n"
    "Confidence: {how sure you are of that answer, from 0% to 100%}"
)
HLE_CHOICE_SYSTEM = (
    "Write your response in this format:\n"
    "Explanation: {the reasoning behind the choice you make}\n"
    "Answer: {the letter of the answer you choose}\n"
    "Confidence: {how sure you are of that answer, from 0% to 100%}"
)


def default_templates() -> dict[str, PromptTemplate]:
    """Domain -> its default template (`DomainSpec.template`; the identity when a spec names none)."""
    return {name: load_dotted(spec.template) if spec.template else IDENTITY for name, spec in SPECS.items()}


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_TEMPLATES":  # a view of the registry, kept for callers of earlier versions
        return default_templates()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def templates_for(overrides: Mapping[str, PromptTemplate]) -> dict[str, PromptTemplate]:
    """The default templates with the configured per-domain overrides applied."""
    return {**default_templates(), **overrides}


def render(template: PromptTemplate, content: str) -> str:
    """Apply `template` to one message's text (idempotent: already-templated text is returned as is)."""
    for old in sorted(template.replace_prefix, key=len, reverse=True):
        new = template.replace_prefix[old]
        if content.startswith(old) and not content.startswith(new):
            content = new + content[len(old) :]
            break
    head, _, tail = template.template.partition(PROMPT_PLACEHOLDER)
    if content.startswith(head) and content.endswith(tail):
        return content
    return head + content + tail
