"""The ``hle_judge`` scorer: an LLM judge deciding whether a response's final answer matches the gold answer.

HLE's answers are free-form (numbers, expressions, names, multiple-choice letters), so exact matching
under-counts; the benchmark's own protocol asks a judge model for a structured verdict. This judge sends
the question, the graded part of the response (after the last ``</think>``, as every other scorer) and the
gold answer to any OpenAI-compatible server at temperature 0, and reads the last ``correct: yes|no`` line
of its reply. The prompt is written here; its version and the judge model are recorded with each score.
A reply without a verdict is retried twice, then scored 0 with reason ``parse_error`` (the reply kept in
the details). An unreachable judge raises, so the samples stay pending.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UnavailableError
from ..rewards.result import Reason, Result
from ..rewards.thinking import final_segment
from .client import Client, ClientConfig
from .scorers import ScoreRequest, ScorerSettings, prompt_text, trim
from .suite import Sampling

PROMPT_VERSION = 1
JUDGE_PROMPT = """You are grading an answer to an exam question. Decide whether the final answer in the \
RESPONSE is equivalent to the CORRECT ANSWER. Judge only the final answer: ignore the quality of the \
reasoning, accept differences in notation, formatting or rounding that do not change the value, and treat \
a missing or hedged final answer as incorrect.

QUESTION:
{question}

RESPONSE:
{response}

CORRECT ANSWER:
{answer}

Reply with exactly these four lines:
extracted_final_answer: <the final answer the response commits to, or None>
reasoning: <one or two sentences comparing it with the correct answer>
correct: <yes or no>
confidence: <the confidence the response states for its answer, 0-100; 100 if it states none>"""
_VERDICT = re.compile(r"^\s*\**correct\**\s*:\s*\**\s*(yes|no)\b", re.IGNORECASE | re.MULTILINE)
_EXTRACTED = re.compile(r"^\s*extracted_final_answer\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
JUDGE_SAMPLING = Sampling(temperature=0.0, top_p=1.0, max_tokens=4096)
_ATTEMPTS = 3


def parse_verdict(reply: str) -> tuple[bool | None, str | None]:
    """(correct, extracted answer) from a judge reply; correct is None when no verdict line is found."""
    verdicts = _VERDICT.findall(reply)
    extracted = _EXTRACTED.findall(reply)
    answer = extracted[-1].strip() if extracted else None
    return (verdicts[-1].lower() == "yes" if verdicts else None), answer


class JudgeScorer:
    """See the module docstring."""

    name = "hle_judge"
    inline = False

    def __init__(self, url: str, model: str, concurrency: int, require_thinking: bool):
        self._client = Client([url], ClientConfig(concurrency=concurrency, retries=4, timeout_s=600.0))
        self._model = model
        self._require_thinking = require_thinking
        self.version = f"hle_judge prompt v{PROMPT_VERSION}, judge {model}"

    async def _one(self, request: ScoreRequest) -> Result:
        graded, reason = final_segment(request.response, require_thinking=self._require_thinking)
        if reason is not None:
            return Result.fail(reason)
        if request.label in (None, ""):
            return Result.fail(Reason.BAD_LABEL, error="the row has no gold answer (label)")
        question = prompt_text(request.prompt) or ""
        text = JUDGE_PROMPT.format(question=question, response=graded, answer=request.label)
        reply = ""
        for _ in range(_ATTEMPTS):
            done = await self._client.chat(self._model, [{"role": "user", "content": text}], [], JUDGE_SAMPLING)
            reply = done.content or done.text
            correct, extracted = parse_verdict(reply)
            if correct is not None:
                details = {"extracted_answer": extracted, "judge_model": self._model}
                return Result(1.0 if correct else 0.0, Reason.OK if correct else Reason.WRONG, details)
        return Result.fail(Reason.PARSE_ERROR, error="the judge gave no `correct: yes|no` line", reply=trim(reply))

    async def score(self, requests: Sequence[ScoreRequest]) -> list[Result]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def aclose(self) -> None:
        await self._client.aclose()


def make_judge_scorer(settings: ScorerSettings, options: Mapping[str, Any]) -> JudgeScorer:
    """Factory of ``hle_judge``: needs ``--judge-url`` and ``--judge-model`` (or scorer_options url/model)."""
    url = options.get("url") or settings.judge_url
    model = options.get("model") or settings.judge_model
    if not url or not model:
        raise UnavailableError("the HLE judge needs a judge server: pass --judge-url URL --judge-model NAME")
    require_thinking = bool(settings.reward.get("require_thinking", True))
    return JudgeScorer(str(url), str(model), settings.judge_concurrency, require_thinking)
