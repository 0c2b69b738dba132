"""``analyze kl``'s server work: sample each expert on each domain's prompts, score every sample under the
expert itself and under each multi-domain model, and append the records (resumable).

* ``trajectories.jsonl``, key (domain, uid, sample_idx, expert): the prompt and response token ids and
  the expert's own log-probs of the response tokens (base64 arrays, `inputs.pack`);
* ``pairs.jsonl``, key (domain, uid, sample_idx, expert, multi): that sample's summed k1/k3 terms under
  one multi-domain model (`estimators.sequence_terms`).

Sampling goes through the evaluation runner's client (`m2rl_slime.eval.client.Client`); scoring goes
through the MT-OPD teacher client (`m2rl_slime.opd.teachers.TeacherRouter`: prompt + response ids with
``max_new_tokens: 0`` and ``return_logprob``, every returned id checked), at the sampling temperature.
A killed run reruns only what is missing; a later run with one more ``--multi`` scores the stored
trajectories under it without sampling again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, ServerError, TeacherError
from ...eval.client import Client, ClientConfig, generate_payload, run_workers
from ...eval.identity import sample_seed, utc_now
from ...eval.suite import Sampling
from ..keyed_log import KeyedLog
from .estimators import sequence_terms
from .inputs import ID_DTYPE, LOGPROB_DTYPE, Endpoint, KLSettings, Prompt, PromptEncoder, pack, unpack

logger = logging.getLogger(__name__)
TRAJECTORIES, PAIRS = "trajectories.jsonl", "pairs.jsonl"
TRAJECTORY_KEY = ("domain", "uid", "sample_idx", "expert")
PAIR_KEY = (*TRAJECTORY_KEY, "multi")
_STATUS = {"length": "truncated", "abort": "aborted"}


@dataclass(frozen=True, slots=True)
class KLPlan:
    """Everything one ``analyze kl`` run samples and scores."""

    prompts: Mapping[str, Sequence[Prompt]]
    experts: Sequence[Endpoint]
    multis: Sequence[Endpoint]
    settings: KLSettings
    client: ClientConfig
    max_failures: int = 50
    progress: bool | None = None


@dataclass(frozen=True, slots=True)
class WorkReport:
    sampled: int
    scored: int
    failed: int
    errors: tuple[str, ...]


def output_ids(reply: Any, url: str) -> tuple[list[int], str | None]:
    """The sampled token ids and finish reason of an SGLang ``/generate`` reply (``return_logprob``).

    Raises:
        ServerError: the reply carries neither ``meta_info.output_token_logprobs`` nor ``output_ids``.
    """
    meta = reply.get("meta_info") if isinstance(reply, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    finish = meta.get("finish_reason")
    finish = finish.get("type") if isinstance(finish, Mapping) else finish
    entries = meta.get("output_token_logprobs")
    if isinstance(entries, list):
        try:
            return [int(e[1]) for e in entries], finish
        except (TypeError, IndexError, ValueError):
            raise ServerError(f"{url}/generate: malformed output_token_logprobs entry") from None
    ids = reply.get("output_ids") if isinstance(reply, Mapping) else None
    if isinstance(ids, list) and all(isinstance(i, int) for i in ids):
        return list(ids), finish
    raise ServerError(f"{url}/generate: the reply has no output token ids (output_token_logprobs / output_ids); "
                      "the sampler must be an SGLang server (or use --api chat with --tokenizer)")  # fmt: skip


def teacher_router(endpoints: Sequence[Endpoint], client: ClientConfig, temperature: float) -> Any:
    """The MT-OPD teacher client, with one 'teacher' per scoring model (keyed by the model's name)."""
    from ...opd.config import OPDConfig, TeacherConfig
    from ...opd.teachers import TeacherRouter

    teachers = {e.name: TeacherConfig(urls=e.urls, name=e.name, max_concurrency=client.concurrency) for e in endpoints}
    for teacher in teachers.values():
        teacher.validate()
    config = OPDConfig(teachers=teachers, timeout_s=client.timeout_s, connect_timeout_s=client.connect_timeout_s,
                       max_retries=client.retries, backoff_s=client.backoff_s,
                       backoff_max_s=max(client.backoff_max_s, client.backoff_s), max_concurrency=client.concurrency)  # fmt: skip
    return TeacherRouter(config, temperature=temperature)


class _Work:
    def __init__(self, plan: KLPlan, encoder: PromptEncoder, trajectories: KeyedLog, pairs: KeyedLog):
        self.plan, self.encoder, self.trajectories, self.pairs = plan, encoder, trajectories, pairs
        s = plan.settings
        self.sampling = Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                 chat_template_kwargs=dict(s.chat_template_kwargs))  # fmt: skip
        self.samplers = {e.name: Client(e.urls, plan.client) for e in plan.experts}
        self.router = teacher_router([*plan.experts, *plan.multis], plan.client, s.temperature)
        self.model_ids: dict[str, str] = {}
        self.counts = {"sampled": 0, "scored": 0, "failed": 0}
        self.errors: list[str] = []

    async def _sample(self, expert: str, prompt: Prompt, prompt_ids: list[int], seed: int) -> tuple[list[int], str | None, str]:  # fmt: skip
        client = self.samplers[expert]
        if self.plan.settings.api == "generate":
            payload = {**generate_payload(prompt_ids, self.sampling, seed), "return_logprob": True}
            reply, url, _ = await client.post("/generate", payload)
            ids, finish = output_ids(reply, url)
            return ids, finish, url
        if expert not in self.model_ids:
            self.model_ids[expert] = await client.model_id()
        done = await client.chat(self.model_ids[expert], prompt.messages, prompt.tools, self.sampling, seed)
        return self.encoder.response_ids(done.text, done.finish_reason), done.finish_reason, done.url

    async def _score(self, model: str, prompt_ids: Sequence[int], response_ids: Sequence[int], sample_id: str) -> list[float]:  # fmt: skip
        if not response_ids:
            return []
        tokens = [*prompt_ids, *response_ids]
        return (await self.router.score(model, tokens, len(response_ids), sample_id=sample_id)).log_probs

    async def _trajectory(self, prompt: Prompt, idx: int, expert: str) -> dict[str, Any]:
        key = (prompt.domain, prompt.uid, idx, expert)
        if key in self.trajectories:
            return self.trajectories.read_at(key)
        s = self.plan.settings
        seed = sample_seed(s.seed, f"kl/{prompt.domain}/{expert}", prompt.uid, idx)
        prompt_ids = self.encoder.prompt_ids(prompt)
        response_ids, finish, url = await self._sample(expert, prompt, prompt_ids, seed)
        log_probs = await self._score(expert, prompt_ids, response_ids, f"{prompt.domain}/{prompt.uid}#{idx}")
        record = {
            "domain": prompt.domain, "uid": prompt.uid, "sample_idx": idx, "expert": expert,
            "prompt_sha": prompt.prompt_sha, "seed": seed, **s.protocol(), "sampler_url": url,
            "finish_reason": finish, "status": _STATUS.get(finish or "", "completed"),
            "prompt_tokens": len(prompt_ids), "response_tokens": len(response_ids),
            "expert_logprob_sum": float(sum(log_probs)), "prompt_ids": pack(prompt_ids, ID_DTYPE),
            "response_ids": pack(response_ids, ID_DTYPE), "expert_logprobs": pack(log_probs, LOGPROB_DTYPE),
            "generated_at": utc_now(),
        }  # fmt: skip
        self.trajectories.append(record)
        self.counts["sampled"] += 1
        return record

    async def job(self, prompt: Prompt, idx: int, expert: str) -> None:
        multis = [
            m.name for m in self.plan.multis if (prompt.domain, prompt.uid, idx, expert, m.name) not in self.pairs
        ]
        if not multis and (prompt.domain, prompt.uid, idx, expert) in self.trajectories:
            return
        record = await self._trajectory(prompt, idx, expert)
        prompt_ids = unpack(record["prompt_ids"], ID_DTYPE).tolist()
        response_ids = unpack(record["response_ids"], ID_DTYPE).tolist()
        expert_lp = unpack(record["expert_logprobs"], LOGPROB_DTYPE)
        for multi in multis:
            multi_lp = await self._score(multi, prompt_ids, response_ids, f"{prompt.domain}/{prompt.uid}#{idx}")
            terms = sequence_terms(expert_lp, multi_lp)
            self.pairs.append({
                "domain": prompt.domain, "uid": prompt.uid, "sample_idx": idx, "expert": expert, "multi": multi,
                "status": record["status"], "n_tokens": terms.n_tokens, "k1": terms.k1, "k3": terms.k3,
                "multi_logprob_sum": float(sum(multi_lp)), "max_abs_log_ratio": terms.max_abs_log_ratio,
                "temperature": record["temperature"], "scored_at": utc_now(),
            })  # fmt: skip
            self.counts["scored"] += 1

    async def close(self) -> None:
        for client in self.samplers.values():
            await client.aclose()
        await self.router.aclose()


def _jobs(plan: KLPlan) -> list[tuple[Prompt, int, str]]:
    """Every (prompt, sample index, expert), experts interleaved so all servers stay busy."""
    jobs = []
    for domain_prompts in plan.prompts.values():
        for prompt in domain_prompts:
            for idx in range(plan.settings.samples_per_prompt):
                jobs += [(prompt, idx, e.name) for e in plan.experts]
    return jobs


async def _drive(work: _Work, jobs: list[tuple[Prompt, int, str]]) -> None:
    from tqdm import tqdm

    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    bar = tqdm(total=len(jobs), desc="analyze kl", unit="sample", disable=work.plan.progress is False)

    async def worker() -> None:
        while not queue.empty():
            prompt, idx, expert = queue.get_nowait()
            try:
                await work.job(prompt, idx, expert)
            except (ServerError, TeacherError) as exc:
                work.counts["failed"] += 1
                work.errors.append(f"{prompt.domain}/{prompt.uid}#{idx} by {expert}: {exc}")
                logger.warning("sample %s/%s#%d of %s failed: %s", prompt.domain, prompt.uid, idx, expert, exc)
                if work.counts["failed"] >= work.plan.max_failures:
                    raise ServerError(f"{work.counts['failed']} samples failed; last: {exc}") from None
            bar.update(1)
            bar.set_postfix(sampled=work.counts["sampled"], failed=work.counts["failed"], refresh=False)

    try:
        await run_workers(work.plan.client.concurrency, worker)
    finally:
        bar.close()


def run_work(plan: KLPlan, encoder: PromptEncoder, trajectories: KeyedLog, pairs: KeyedLog) -> WorkReport:
    """Sample and score whatever `trajectories` and `pairs` do not hold yet.

    Raises:
        ConfigError: expert and multi names overlap.
        ServerError: more than ``max_failures`` samples failed (what was finished is kept).
    """
    names = [e.name for e in plan.experts] + [m.name for m in plan.multis]
    if len(set(names)) != len(names):
        raise ConfigError(f"--expert and --multi names must all differ: {', '.join(names)}")
    return asyncio.run(_main(plan, encoder, trajectories, pairs))


async def _main(plan: KLPlan, encoder: PromptEncoder, trajectories: KeyedLog, pairs: KeyedLog) -> WorkReport:
    work = _Work(plan, encoder, trajectories, pairs)
    try:
        await _drive(work, _jobs(plan))
    finally:
        await work.close()
    return WorkReport(work.counts["sampled"], work.counts["scored"], work.counts["failed"], tuple(work.errors[:5]))
