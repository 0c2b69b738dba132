"""``analyze selfverify``'s server work: each model judges its own trajectories, K times per mode.

Requests go through the evaluation runner's client (OpenAI-compatible chat completions, every sampling
setting explicit, one seed per judge sample derived from its key). Each verdict is appended to
``judge.jsonl`` with key (model, mode, benchmark, uid, sample_idx, judge_idx); a killed run asks only for
what is missing. A request that fails after the client's retries is not recorded (the next run asks
again) and makes the command exit 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError, ServerError
from ...eval.client import Client, ClientConfig, run_workers
from ...eval.identity import sample_seed, utc_now
from ...eval.suite import Sampling
from ..keyed_log import KeyedLog
from .prompts import Mode, Templates, Verdict, parse_verdict, render
from .trajectories import ModelTrajectories, Trajectory

logger = logging.getLogger(__name__)
JUDGE = "judge.jsonl"
JUDGE_KEY = ("model", "mode", "benchmark", "uid", "sample_idx", "judge_idx")
_REPLY_CHARS = 4000


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """How the judges sample (recorded in ``run.json``; a resumed run must keep the sampling).

    Attributes:
        k: Judge samples per trajectory and mode.
        temperature, top_p, max_tokens: The judge's sampling (thinking mode needs a generous budget).
        chat_template_kwargs: E.g. ``{"enable_thinking": true}`` for a template that switches thinking.
        seed: Base of the per-verdict seeds.
    """

    k: int = 8
    temperature: float = 1.0
    top_p: float = 0.95
    max_tokens: int = 16384
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def validate(self) -> None:
        if self.k < 1 or self.max_tokens < 1:
            raise ConfigError("--k and --max-tokens must be >= 1")
        Sampling(self.temperature, self.top_p, self.max_tokens).validate()

    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_tokens,
                        chat_template_kwargs=dict(self.chat_template_kwargs))  # fmt: skip

    def protocol(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "chat_template_kwargs": dict(self.chat_template_kwargs), "seed": self.seed}  # fmt: skip


@dataclass(frozen=True, slots=True)
class JudgePlan:
    models: Sequence[ModelTrajectories]
    urls: Mapping[str, tuple[str, ...]]
    judge_ids: Mapping[str, str]
    modes: Sequence[Mode]
    settings: JudgeSettings
    templates: Templates
    client: ClientConfig
    max_failures: int = 50
    progress: bool | None = None


@dataclass
class _State:
    plan: JudgePlan
    log: KeyedLog
    clients: dict[str, Client]
    judge_ids: dict[str, str]
    prompts: dict[tuple[str, str, str, str, int], tuple[str, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"written": 0, "failed": 0})
    errors: list[str] = field(default_factory=list)


def _prompt(state: _State, model: str, mode: Mode, t: Trajectory) -> tuple[str, int]:
    key = (model, mode, t.benchmark, t.uid, t.sample_idx)
    if key not in state.prompts:
        state.prompts[key] = render(state.plan.templates, mode, t.question, t.domain, reasoning=t.reasoning,
                                    content=t.content)  # fmt: skip
    return state.prompts[key]


async def _judge(state: _State, model: str, mode: Mode, t: Trajectory, j: int) -> None:
    settings = state.plan.settings
    text, n_paragraphs = _prompt(state, model, mode, t)
    seed = sample_seed(settings.seed, f"judge/{model}/{mode}/{t.benchmark}", f"{t.uid}#{t.sample_idx}", j)
    done = await state.clients[model].chat(state.judge_ids[model], [{"role": "user", "content": text}], [],
                                          settings.sampling(), seed)  # fmt: skip
    reply = done.content if done.reasoning is not None else done.text
    # a judge cut off by max_tokens never finished its verdict, whatever its text contains: fail closed
    parsed = (
        Verdict(None, error="truncated")
        if done.finish_reason == "length"
        else parse_verdict(mode, reply, n_paragraphs)
    )
    state.log.append({
        "model": model, "mode": mode, "benchmark": t.benchmark, "uid": t.uid, "sample_idx": t.sample_idx,
        "judge_idx": j, "domain": t.domain, "reward": t.reward, "gold": "correct" if t.gold else "incorrect",
        "verdict": parsed.verdict, "index": parsed.index, "parse_error": parsed.error,
        "n_paragraphs": n_paragraphs or None, "reply": reply[-_REPLY_CHARS:],
        "judge_reasoning_chars": len(done.reasoning or ""), "finish_reason": done.finish_reason,
        "prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
        "judge_model_id": state.judge_ids[model], "seed": seed, **settings.protocol(),
        "templates_version": state.plan.templates.version, "templates_sha": state.plan.templates.sha,
        "generated_at": utc_now(),
    })  # fmt: skip
    state.counts["written"] += 1


def _jobs(plan: JudgePlan, log: KeyedLog) -> list[tuple[str, Mode, Trajectory, int]]:
    jobs = []
    for j in range(plan.settings.k):
        for model in plan.models:
            for mode in plan.modes:
                for t in model.trajectories:
                    if (model.name, mode, t.benchmark, t.uid, t.sample_idx, j) not in log:
                        jobs.append((model.name, mode, t, j))
    return jobs


async def _main(plan: JudgePlan, log: KeyedLog) -> _State:
    from tqdm import tqdm

    clients = {m.name: Client(plan.urls[m.name], plan.client) for m in plan.models}
    state = _State(plan, log, clients, dict(plan.judge_ids))
    try:
        for m in plan.models:
            if m.name not in state.judge_ids:
                state.judge_ids[m.name] = await clients[m.name].model_id()
            if m.model_id and state.judge_ids[m.name] != m.model_id:
                logger.warning("model %s: its samples come from %r, the judge server serves %r (each model should "
                               "judge its own trajectories)", m.name, m.model_id, state.judge_ids[m.name])  # fmt: skip
        queue: asyncio.Queue = asyncio.Queue()
        for job in _jobs(plan, log):
            queue.put_nowait(job)
        bar = tqdm(total=queue.qsize(), desc="analyze selfverify", unit="verdict", disable=plan.progress is False)

        async def worker() -> None:
            while not queue.empty():
                model, mode, t, j = queue.get_nowait()
                try:
                    await _judge(state, model, mode, t, j)
                except ServerError as exc:
                    state.counts["failed"] += 1
                    state.errors.append(f"{model}/{mode}/{t.benchmark}/{t.uid}#{t.sample_idx} judge {j}: {exc}")
                    if state.counts["failed"] >= plan.max_failures:
                        raise ServerError(f"{state.counts['failed']} judge requests failed; last: {exc}") from None
                bar.update(1)

        total = sum(plan.client.concurrency * len(plan.urls[m.name]) for m in plan.models)
        try:
            await run_workers(total, worker)
        finally:
            bar.close()
    finally:
        for client in clients.values():
            await client.aclose()
    return state


def run_judges(plan: JudgePlan, log: KeyedLog) -> tuple[int, int, tuple[str, ...], dict[str, str]]:
    """Ask for every verdict `log` lacks; returns (written, failed, first errors, judge model ids)."""
    state = asyncio.run(_main(plan, log))
    return state.counts["written"], state.counts["failed"], tuple(state.errors[:5]), state.judge_ids
