"""Prompt templates: the paper's defaults (M2RL ``process_rl_data.py``) and how a template is applied.

Training (``prepare``):

- math: the paper's instruction is prepended. It asks for a final ``Answer: $Answer`` line, which our
  math verifier accepts (it takes a final ``Answer:`` line or ``\\boxed{}``; M2RL's grader scored it 0).
- science: a leading "Answer the following multiple choice question." becomes "... step by step." as in
  the paper, but only when the prompt really starts with it (the paper sliced blindly, which cuts the
  first 47 characters of stem_mcqa prompts that start differently).
- if, code, agent: unchanged, as in the paper.

Evaluation (``prepare-eval``, raw benchmark rows): AIME gets the paper's eval instruction (boxed answer
on the ``Answer:`` line), GPQA the paper's letter format over options shuffled with a seed.
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
