"""``python -m m2rl_slime.analyze selfverify``: each model judges its own saved trajectories in outcome and
process mode (Table 7, Figs. 6-8). `trajectories` reads the evaluations, `prompts` holds the judge prompts
and verdict parsing, `judging` asks the servers (resumable), `report` computes, `plot` draws.

The output directory holds ``run.json`` (settings, templates, models), ``judge.jsonl`` (every verdict),
``selfverify.json`` + ``selfverify.csv`` + ``table7.csv`` and the figures. ``--report-only`` recomputes the
numbers and figures from ``judge.jsonl`` without any server.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ... import __version__
from ...errors import ConfigError
from ...eval.identity import utc_now
from ...eval.samples import read_json, write_json
from .prompts import MODES
from .trajectories import DEFAULT_BENCHMARKS

logger = logging.getLogger(__name__)
RUN = "run.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    io = parser.add_argument_group("models and outputs")
    io.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a model's evaluation directory (samples.jsonl, run.json); repeat per model",
    )
    io.add_argument(
        "--judge-url",
        action="append",
        default=[],
        metavar="NAME=URL[,URL]",
        help="the OpenAI-compatible server of that same model (it judges its own trajectories)",
    )
    io.add_argument(
        "--judge-model",
        action="append",
        default=[],
        metavar="NAME=ID",
        help="the model name to send (default: what the server's /v1/models says)",
    )
    io.add_argument("--data-dir", metavar="DIR", help="prepared benchmark files, when run.json's paths moved")
    io.add_argument("--out", required=True, metavar="DIR", help="output directory (resumed when it exists)")
    io.add_argument("--report-only", action="store_true", help="recompute the numbers and figures from judge.jsonl")
    what = parser.add_argument_group("what is judged")
    what.add_argument(
        "--benchmarks",
        default=",".join(DEFAULT_BENCHMARKS),
        metavar="B1,B2",
        help=f"benchmarks (default {','.join(DEFAULT_BENCHMARKS)}: Table 7)",
    )
    what.add_argument("--modes", default="outcome,process", help="outcome, process or both (default both)")
    what.add_argument(
        "--max-per-item",
        type=int,
        default=4,
        metavar="N",
        help="judge samples with sample_idx < N of every item (default 4)",
    )
    what.add_argument("--threshold", type=float, default=1.0, help="gold 'correct' when reward >= this (default 1)")
    what.add_argument("--templates", metavar="YAML", help="judge prompts (default: the shipped prompts.yaml)")
    j = parser.add_argument_group("judge sampling (a resumed run must keep these)")
    j.add_argument("--k", type=int, default=8, help="judge samples per trajectory and mode (default 8)")
    j.add_argument("--temperature", type=float, default=1.0, help="judge temperature (default 1.0)")
    j.add_argument("--top-p", type=float, default=0.95, help="judge top_p (default 0.95)")
    j.add_argument("--max-tokens", type=int, default=16384, metavar="N", help="judge budget (default 16384)")
    j.add_argument("--chat-template-kwargs", default="{}", metavar="JSON", help="e.g. '{\"enable_thinking\": true}'")
    j.add_argument("--seed", type=int, default=0, help="base of the per-verdict seeds (default 0)")
    c = parser.add_argument_group("client and report")
    c.add_argument("--concurrency", type=int, default=16, metavar="N", help="requests in flight per URL")
    c.add_argument("--retries", type=int, default=5, metavar="N", help="retries of a failed request")
    c.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="deadline of one request")
    c.add_argument("--max-failures", type=int, default=50, metavar="N", help="stop after N failed requests")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples of the correlations")
    c.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    c.add_argument("--fig8", metavar="M1,M2", help="models of Fig. 8, e.g. rl_multi,ties,mt_opd (default: all)")


def _list(text: str, flag: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise ConfigError(f"{flag} is empty")
    if allowed is not None:
        bad = [n for n in names if n not in allowed]
        if bad:
            raise ConfigError(f"{flag}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    return names


def _settings(opts: argparse.Namespace) -> Any:
    from .judging import JudgeSettings

    try:
        kwargs = json.loads(opts.chat_template_kwargs)
    except ValueError as exc:
        raise ConfigError(f"--chat-template-kwargs is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise ConfigError("--chat-template-kwargs must be a JSON object")
    settings = JudgeSettings(opts.k, opts.temperature, opts.top_p, opts.max_tokens, kwargs, opts.seed)
    settings.validate()
    if opts.max_per_item < 1:
        raise ConfigError(f"--max-per-item must be >= 1, got {opts.max_per_item}")
    return settings


def _check_resume(out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    if not (out / RUN).is_file():
        return {}
    run = read_json(out / RUN)
    for key in ("protocol", "templates", "threshold"):
        if key in run and run[key] != meta[key]:
            raise ConfigError(
                f"{out} holds verdicts with {key} {run[key]}, not {meta[key]}: keep them or use a new --out"
            )
    return run


def _judge(opts: argparse.Namespace, out: Path, models: dict[str, str], settings: Any, meta: dict[str, Any],
           benchmarks: list[str], modes: list[str], templates: Any) -> tuple[int, int, tuple[str, ...]]:  # fmt: skip
    from ...eval.client import ClientConfig
    from ..keyed_log import KeyedLog
    from ..neighbours.inputs import parse_endpoints, parse_named
    from .judging import JUDGE, JUDGE_KEY, JudgePlan, run_judges
    from .trajectories import load_model

    urls = {e.name: e.urls for e in parse_endpoints(opts.judge_url, "--judge-url")}
    missing = [m for m in models if m not in urls]
    if missing:
        raise ConfigError(f"give --judge-url NAME=URL for {', '.join(missing)} (or --report-only)")
    loaded = [load_model(name, path, benchmarks, max_per_item=opts.max_per_item, threshold=opts.threshold,
                         data_dir=opts.data_dir) for name, path in models.items()]  # fmt: skip
    for m in loaded:
        for why, count in m.skipped.items():
            logger.info("model %s: %d samples not judged (%s)", m.name, count, why)
    client = ClientConfig(concurrency=opts.concurrency, retries=opts.retries, timeout_s=opts.timeout)
    client.validate()
    plan = JudgePlan(loaded, urls, parse_named(opts.judge_model, "--judge-model"), modes, settings, templates, client,
                     opts.max_failures, False if opts.no_progress else None)  # fmt: skip
    write_json(out / RUN, meta)  # before the first verdict: a killed run's records keep their settings on file
    with KeyedLog(out / JUDGE, JUDGE_KEY) as log:
        written, failed, errors, judge_ids = run_judges(plan, log)
    write_json(out / RUN, {**meta, "judge_urls": {k: list(v) for k, v in urls.items()}, "judge_model_ids": judge_ids,
                           "skipped": {m.name: m.skipped for m in loaded}})  # fmt: skip
    return written, failed, errors


def run(opts: argparse.Namespace) -> int:
    from ..keyed_log import locked
    from ..neighbours.inputs import parse_named
    from ..outputs import draw_figures
    from .plot import plot
    from .prompts import load_templates
    from .report import SELFVERIFY_JSON, build_report, format_report, write_report
    from .trajectories import generation_scores

    models = parse_named(opts.model, "--model")
    if not models:
        raise ConfigError("give at least one --model NAME=DIR")
    benchmarks = _list(opts.benchmarks, "--benchmarks")
    modes = _list(opts.modes, "--modes", MODES)
    settings, templates = _settings(opts), load_templates(opts.templates)
    out = Path(opts.out)
    meta = {"protocol": settings.protocol(), "k": settings.k, "max_per_item": opts.max_per_item,
            "threshold": opts.threshold, "models_dirs": models,
            "templates": {"version": templates.version, "sha": templates.sha},
            "templates_path": opts.templates or "shipped",
            "m2rl_slime": __version__}  # fmt: skip
    work = None
    with locked(out, "selfverify"):
        run_json = _check_resume(out, meta)
        meta.update(created_at=run_json.get("created_at", utc_now()), updated_at=utc_now())
        if not opts.report_only:
            work = _judge(opts, out, models, settings, meta, benchmarks, modes, templates)
        elif not (out / "judge.jsonl").is_file():
            raise ConfigError(f"{out}: no judge.jsonl; run `analyze selfverify` with --judge-url first")
        generation = {name: generation_scores(path, benchmarks) for name, path in models.items()}
        fig8 = _list(opts.fig8, "--fig8") if opts.fig8 else list(models)
        report = build_report(out, list(models), modes, benchmarks, generation, meta, k=settings.k,
                              max_per_item=opts.max_per_item, resamples=opts.resamples, seed=opts.bootstrap_seed, fig8=fig8)  # fmt: skip
        write_report(out, report)
    print(format_report(report))
    for path in draw_figures(plot, out / SELFVERIFY_JSON, logger):
        print(path)
    if work is not None:
        written, failed, errors = work
        print(f"{written} verdicts written, {failed} requests failed")
        for error in errors:
            print(f"  failed: {error}")
        return 1 if failed else 0
    return 0
