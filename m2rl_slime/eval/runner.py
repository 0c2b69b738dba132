"""``eval run``: a suite's K samples per item from SGLang or OpenAI-compatible servers, scored, into DIR.

Generation is bounded (``concurrency`` requests per server URL, spread over the URLs by the client) and
resumable: samples already in ``DIR/samples.jsonl`` are not generated again, each finished sample is
appended as one line, and a run killed at any point continues where it stopped without writing a key
twice. Single-turn rows go through chat completions (or SGLang ``/generate`` with ``--api generate``,
templated here with the model's tokenizer exactly as slime templates them); rows of a benchmark with an
episode driver are played as episodes (`drivers`). Inline scorers (the reward router) score each sample
before it is written; the others run after generation (`rescore.score_directory`). Benchmarks whose
prepared file is missing are reported in one line each and not run; benchmarks whose scorer cannot run
here are generated and left pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from ..errors import ConfigError, ServerError, UnavailableError
from ..rewards.result import Result
from .client import Client, ClientConfig, Completion, bind_chat, run_workers
from .drivers import Driver, final_response, load_driver, uses_driver
from .identity import ckpt_sha, sample_seed, split_reasoning, utc_now
from .rows import EvalItem, load_items
from .samples import RUN, SAMPLES, SampleLog, locked, read_json, write_items, write_json
from .scorers import Scorer, ScoreRequest, ScorerSettings, make_scorer, trim
from .suite import Benchmark, Suite, availability, benchmark_path

logger = logging.getLogger(__name__)
_STATUS = {"length": "truncated", "abort": "aborted"}


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How `run_suite` generates.

    Attributes:
        urls: Server base URLs (all serving the same model).
        out: The evaluation directory.
        data_dir: Where the suite's prepared files are.
        model_id: The model's name in records and reports (default: what ``/v1/models`` says).
        model_path: The HF checkpoint (hashed into ``ckpt_sha``; the tokenizer of ``--api generate``).
        tokenizer: The tokenizer of ``--api generate`` (default: `model_path`).
        api: ``chat`` or ``generate`` for single-turn rows (a benchmark's own ``api`` wins).
        score: Score after generating (False: leave every sample pending).
        max_failures: Stop after this many samples failed (server errors); they are retried next run.
    """

    urls: tuple[str, ...]
    out: Path
    data_dir: Path
    model_id: str | None = None
    model_path: str | None = None
    tokenizer: str | None = None
    api: Literal["chat", "generate"] = "chat"
    client: ClientConfig = field(default_factory=ClientConfig)
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    score: bool = True
    progress: bool | None = None
    max_failures: int = 50


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run did: samples written now and found from before, failures, and benchmarks not run or
    not scored (name -> one line why)."""

    written: int
    existing: int
    failed: int
    missing: Mapping[str, str]
    pending: Mapping[str, str]
    errors: tuple[str, ...] = ()


@dataclass
class _Context:
    suite: Suite
    options: RunOptions
    client: Client
    log: SampleLog
    model_id: str
    ckpt: str | None
    scorers: dict[str, Scorer]
    drivers: dict[str, Driver]
    bridges: dict[str, Any]
    encoder: Any = None
    cache: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def check_run_json(out: Path, suite: Suite, model_id: str | None) -> dict[str, Any] | None:
    """The directory's ``run.json``, checked against this run (same suite file, same model).

    Raises:
        ConfigError: the directory holds another suite's or another model's samples.
    """
    if not (out / RUN).is_file():
        return None
    run = read_json(out / RUN)
    if run.get("suite") != suite.name or run.get("suite_sha") != suite.sha:
        raise ConfigError(
            f"{out} holds samples of suite {run.get('suite')} ({run.get('suite_sha')}), not {suite.name} "
            f"({suite.sha}): the suite changed or the directory is another run's; use a new --out"
        )
    if model_id and run.get("model_id") not in (None, model_id):
        raise ConfigError(f"{out} holds samples of model {run.get('model_id')!r}, not {model_id!r}; use a new --out")
    return run


def _tokenizer_encoder(path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer from {path} for --api generate: {exc}") from None

    def encode(item: EvalItem, bench: Benchmark) -> list[int]:
        text = tokenizer.apply_chat_template(
            item.prompt, tools=item.tools or None, tokenize=False, add_generation_prompt=True,
            **bench.sampling.chat_template_kwargs,
        )  # fmt: skip
        return tokenizer.encode(text, add_special_tokens=False)

    return encode


def _base_record(ctx: _Context, bench: Benchmark, item: EvalItem, idx: int, seed: int) -> dict[str, Any]:
    sampling = bench.sampling
    return {
        "suite": ctx.suite.name, "benchmark": bench.name, "uid": item.uid, "sample_idx": idx,
        "model_id": ctx.model_id, "ckpt_sha": ctx.ckpt, "prompt_sha": item.prompt_sha,
        "temperature": sampling.temperature, "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
        "seed": seed, "scorer": bench.scorer, "scorer_version": None, "reward": None, "reason": None,
        "details": None, "generated_at": utc_now(),
    }  # fmt: skip


def _fill_generation(record: dict[str, Any], done: Completion) -> None:
    record.update(
        response=done.text, reasoning=done.reasoning, content=done.content, finish_reason=done.finish_reason,
        status=_STATUS.get(done.finish_reason or "", "completed"), prompt_tokens=done.prompt_tokens,
        response_tokens=done.completion_tokens,
    )  # fmt: skip


async def _episode(ctx: _Context, bench: Benchmark, item: EvalItem, seed: int, record: dict[str, Any]) -> None:
    usage: list[Completion] = []
    chat = bind_chat(ctx.client, ctx.model_id, bench.sampling, seed, usage)
    episode = dict(await ctx.drivers[bench.name].run_episode(chat, item.row, ctx.bridges.get(bench.name)))
    if not isinstance(episode.get("messages"), list):
        raise UnavailableError(f"episode driver {bench.driver!r} returned no `messages` list for {item.uid}")
    text = final_response(episode)
    reasoning, content = split_reasoning(text)
    finish = episode.pop("finish_reason", usage[-1].finish_reason if usage else None)
    record.update(
        response=text, reasoning=reasoning, content=content, finish_reason=finish,
        status=episode.pop("status", _STATUS.get(finish or "", "completed")),
        prompt_tokens=usage[0].prompt_tokens if usage else None,
        response_tokens=sum(u.completion_tokens or 0 for u in usage) if usage else None,
        messages=episode.pop("messages"), turns=len(usage),
    )  # fmt: skip
    episode.pop("response", None)
    verdict = episode.pop("result", None)
    version = episode.pop("scorer_version", f"driver {bench.driver}")
    if verdict is not None:
        result = verdict if isinstance(verdict, Result) else Result.from_dict(verdict)
        record.update(reward=result.score, reason=result.reason.value, details=trim(dict(result.details)))
        record["scorer_version"] = version
    if episode:
        record["episode"] = json.loads(json.dumps(episode, default=str))


async def _score_inline(ctx: _Context, bench: Benchmark, item: EvalItem, record: dict[str, Any]) -> None:
    scorer = ctx.scorers.get(bench.name)
    if scorer is None or not scorer.inline or record["reward"] is not None:  # an episode may score itself
        return
    request = ScoreRequest(
        bench.name, item.uid, record["sample_idx"], bench.domain, record["response"], item.label,
        item.metadata, item.prompt, record.get("messages"), record.get("episode"),
    )  # fmt: skip
    (result,) = await scorer.score([request])
    record.update(reward=result.score, reason=result.reason.value, details=trim(dict(result.details)))
    record["scorer_version"] = scorer.version


async def _one(ctx: _Context, bench: Benchmark, item: EvalItem, idx: int) -> dict[str, Any]:
    seed = sample_seed(ctx.suite.seed, bench.name, item.uid, idx)
    record = _base_record(ctx, bench, item, idx, seed)
    if uses_driver(bench, item.row):
        await _episode(ctx, bench, item, seed, record)
    elif (bench.api or ctx.options.api) == "generate":
        key = (bench.name, item.uid)
        if key not in ctx.cache:
            ctx.cache[key] = ctx.encoder(item, bench)
        _fill_generation(record, await ctx.client.generate(ctx.cache[key], bench.sampling, seed))
    else:
        _fill_generation(record, await ctx.client.chat(ctx.model_id, item.prompt, item.tools, bench.sampling, seed))
    await _score_inline(ctx, bench, item, record)
    return record


def _jobs(ctx: _Context, plan: list[tuple[Benchmark, list[EvalItem]]]) -> list[tuple[Benchmark, EvalItem, int]]:
    jobs = []
    for bench, items in plan:
        for item in items:
            if uses_driver(bench, item.row) and bench.name not in ctx.drivers:
                continue
            jobs += [(bench, item, i) for i in range(bench.k) if (bench.name, item.uid, i) not in ctx.log]
    return jobs


async def _generate(ctx: _Context, jobs: list[tuple[Benchmark, EvalItem, int]]) -> tuple[int, int]:
    from tqdm import tqdm

    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    remaining = Counter((b.name, it.uid) for b, it, _ in jobs)
    counts = {"written": 0, "failed": 0, "items": 0}
    bar = tqdm(total=len(jobs), desc=f"eval {ctx.suite.name}", unit="sample", disable=ctx.options.progress is False)

    async def worker() -> None:
        while not queue.empty():
            bench, item, idx = queue.get_nowait()
            try:
                record = await _one(ctx, bench, item, idx)
            except (ServerError, UnavailableError) as exc:
                counts["failed"] += 1
                ctx.errors.append(f"{bench.name}/{item.uid}#{idx}: {exc}")
                logger.warning("sample %s/%s#%d failed: %s", bench.name, item.uid, idx, exc)
                if counts["failed"] >= ctx.options.max_failures:
                    raise ServerError(f"{counts['failed']} samples failed; last: {exc}") from None
                continue
            ctx.log.append(record)
            counts["written"] += 1
            remaining[(bench.name, item.uid)] -= 1
            counts["items"] += remaining[(bench.name, item.uid)] == 0
            if not bar.disable:
                bar.update(1)
                if counts["written"] % 16 == 0 or not queue.qsize():
                    bar.set_postfix(items=counts["items"], failed=counts["failed"], refresh=False)

    try:
        await run_workers(ctx.options.client.concurrency * len(ctx.client.urls), worker)
    finally:
        bar.close()
    return counts["written"], counts["failed"]


def build_scorers(benchmarks: list[Benchmark], settings: ScorerSettings) -> tuple[dict[str, Scorer], dict[str, str]]:
    """Each benchmark's scorer, and benchmark -> why its scorer cannot run here."""
    scorers, pending = {}, {}
    for bench in benchmarks:
        options = {"domain": bench.domain, **bench.scorer_options}
        try:
            scorers[bench.name] = make_scorer(bench.scorer, settings, options)
        except UnavailableError as exc:
            pending[bench.name] = f"not scored: {exc}"
    return scorers, pending


async def _run(suite: Suite, options: RunOptions, plan: list[tuple[Benchmark, list[EvalItem]]]) -> RunReport:
    client = Client(options.urls, options.client)
    scorers, pending = build_scorers([b for b, _ in plan], options.scorer) if options.score else ({}, {})
    drivers: dict[str, Driver] = {}
    for bench in (b for b, _ in plan if b.driver):
        try:
            drivers[bench.name] = load_driver(bench.driver)
        except UnavailableError as exc:
            pending[bench.name] = f"its episode rows were not run: {exc}"
    model_id = options.model_id or await client.model_id()
    checkpoint = ckpt_sha(options.model_path)
    run = check_run_json(options.out, suite, model_id) or {}
    files = {**run.get("files", {}), **{b.name: str(benchmark_path(b, options.data_dir)) for b, _ in plan}}
    write_json(options.out / RUN, {
        "suite": suite.name, "suite_sha": suite.sha, "suite_path": str(suite.path), "model_id": model_id,
        "model_path": options.model_path, "ckpt_sha": checkpoint, "base_urls": list(client.urls),
        "api": options.api, "generator": "eval run", "m2rl_slime": __version__,
        "created_at": run.get("created_at", utc_now()), "updated_at": utc_now(),
        "benchmarks": {b.name: b.protocol() for b in suite.benchmarks}, "files": files,
    })  # fmt: skip
    encoder = _tokenizer_encoder(options.tokenizer or options.model_path) if _needs_encoder(plan, options) else None
    with SampleLog(options.out / SAMPLES) as log:
        existing = len(log.keys)
        async with AsyncExitStack() as stack:
            bridges = {}
            for name, driver in list(drivers.items()):
                settings = {"out": str(options.out), "bfcl_venv": options.scorer.bfcl_venv}
                try:
                    bridges[name] = await stack.enter_async_context(driver.bridge(settings))
                except UnavailableError as exc:
                    del drivers[name]
                    pending[name] = f"its episode rows were not run: {exc}"
                    logger.warning("benchmark %s: %s", name, pending[name])
            ctx = _Context(suite, options, client, log, model_id, checkpoint, scorers, drivers, bridges, encoder)
            try:
                written, failed = await _generate(ctx, _jobs(ctx, plan))
            finally:
                await client.aclose()
                for scorer in scorers.values():
                    await scorer.aclose()
    return RunReport(written, existing, failed, {}, pending, tuple(ctx.errors[:5]))


def _needs_encoder(plan: list[tuple[Benchmark, list[EvalItem]]], options: RunOptions) -> bool:
    needed = any((b.api or options.api) == "generate" for b, _ in plan)
    if needed and not (options.tokenizer or options.model_path):
        raise ConfigError(
            "--api generate templates prompts with the model's tokenizer: pass --model-path or --tokenizer"
        )
    return needed


def run_suite(suite: Suite, options: RunOptions) -> RunReport:
    """Generate the missing samples of `suite` into ``options.out``, score them, rebuild ``items.jsonl``.

    Raises:
        ConfigError: bad options, unreadable prepared rows, a directory of another run, or no benchmark
            with a prepared file.
    """
    found = availability(suite, options.data_dir)
    for name, why in found.missing.items():
        logger.warning("benchmark %s: missing (%s)", name, why)
    if not found.ready:
        raise ConfigError(f"no benchmark of suite {suite.name} has its prepared file under {options.data_dir}")
    plan = [(bench, load_items(bench, options.data_dir)) for bench in found.ready]
    options.out.mkdir(parents=True, exist_ok=True)
    with locked(options.out):
        report = asyncio.run(_run(suite, options, plan))
        if options.score:
            from .rescore import score_directory

            done = score_directory(options.out, suite, options.scorer, pending_only=True, progress=options.progress)
            pending = {**report.pending, **done.unavailable}
            report = RunReport(report.written, report.existing, report.failed, found.missing, pending, report.errors)
        else:
            report = RunReport(report.written, report.existing, report.failed, found.missing, report.pending,
                               report.errors)  # fmt: skip
        write_items(options.out)
    return report
