"""``python -m m2rl_slime.analyze kl``: the KL cross-comparison matrix of Fig. 4 and the neighbourhoods of
Eq. 1 (`sampling` does the server work, `report` the numbers, `plot` the heat maps).

The output directory holds ``run.json`` (settings, prompts, servers), the records (``trajectories.jsonl``,
``pairs.jsonl``), ``kl.json`` + ``kl.csv`` and ``fig4_kl_<multi>.png``. ``--report-only`` recomputes the
numbers and figures from the records (another rule, other summaries) without any server.
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
from .estimators import ESTIMATORS, NORMALISATIONS
from .report import DOMAIN_BENCHMARKS, KL_JSON, RULES, RuleConfig

logger = logging.getLogger(__name__)
RUN = "run.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    io = parser.add_argument_group("what to sample and score")
    io.add_argument(
        "--prompts",
        action="append",
        default=[],
        metavar="DOMAIN=FILE",
        help="prepared rows of one data domain (repeat per domain; column order)",
    )
    io.add_argument(
        "--expert",
        action="append",
        default=[],
        metavar="NAME=URL[,URL]",
        help="an expert's SGLang server(s); name it after its domain (repeat; row order)",
    )
    io.add_argument(
        "--multi",
        action="append",
        default=[],
        metavar="NAME=URL[,URL]",
        help="a multi-domain model's SGLang server(s): RL-Multi, a merge, MT-OPD (one matrix each)",
    )
    io.add_argument("--tokenizer", metavar="PATH", help="the models' shared tokenizer (an HF checkpoint)")
    io.add_argument("--out", required=True, metavar="DIR", help="output directory (resumed when it exists)")
    io.add_argument("--report-only", action="store_true", help="recompute kl.json and figures from the records")
    s = parser.add_argument_group("sampling (a resumed run must keep these)")
    s.add_argument(
        "--api",
        choices=("generate", "chat"),
        default="generate",
        help="SGLang /generate (sampled ids kept, default) or chat completions (text re-tokenized)",
    )
    s.add_argument("--n-prompts", type=int, default=64, metavar="N", help="prompts per domain, seeded (0: all)")
    s.add_argument("--samples-per-prompt", type=int, default=1, metavar="K", help="samples per prompt and expert")
    s.add_argument("--temperature", type=float, default=1.0, help="sampling = scoring temperature (default 1.0)")
    s.add_argument("--top-p", type=float, default=1.0, help="sampler nucleus (default 1.0: the scored distribution)")
    s.add_argument("--max-tokens", type=int, default=16384, metavar="N", help="response budget (default 16384)")
    s.add_argument("--seed", type=int, default=0, help="seed of the prompt sample and sampling seeds")
    s.add_argument("--chat-template-kwargs", default="{}", metavar="JSON", help="e.g. '{\"enable_thinking\": true}'")
    c = parser.add_argument_group("client")
    c.add_argument("--concurrency", type=int, default=32, metavar="N", help="samples in flight (default 32)")
    c.add_argument("--retries", type=int, default=5, metavar="N", help="retries of a failed request")
    c.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="deadline of one request")
    c.add_argument("--max-failures", type=int, default=50, metavar="N", help="stop after N failed samples")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    r = parser.add_argument_group("neighbourhood rule (Eq. 1)")
    r.add_argument("--estimator", choices=ESTIMATORS, default="k1", help="estimate the rule uses (default k1)")
    r.add_argument("--normalise", choices=NORMALISATIONS, default="token", help="per token (default) or sequence")
    r.add_argument(
        "--rule",
        choices=RULES,
        default="relative",
        help="relative: eps_A = KL_AA (1 + delta) (default); absolute: --eps; rank: the --rank lowest",
    )
    r.add_argument("--delta", type=float, default=0.0, help="relative margin of eps over the diagonal (default 0)")
    r.add_argument("--eps", type=float, help="epsilon of --rule absolute")
    r.add_argument("--rank", type=int, default=1, help="neighbours per domain of --rule rank (default 1)")
    p = parser.add_argument_group("delta-Perf annotation")
    p.add_argument(
        "--summary",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an evaluation's summary.json (or its directory): the experts by name, and the reference",
    )
    p.add_argument("--perf-ref", default="sft", metavar="NAME", help="delta-Perf = expert - this model (default sft)")
    p.add_argument("--domain-benchmarks", action="append", default=[], metavar="DOMAIN=B1,B2",
                   help="benchmarks of a domain's score (default: " + "; ".join(
                       f"{d}={','.join(b)}" for d, b in DOMAIN_BENCHMARKS.items()) + ")")  # fmt: skip


def _rule(opts: argparse.Namespace) -> RuleConfig:
    rule = RuleConfig(opts.estimator, opts.normalise, opts.rule, opts.delta, opts.eps, opts.rank)
    rule.validate()
    return rule


def _perf(opts: argparse.Namespace) -> Any:
    from .inputs import parse_named
    from .report import load_perf

    summaries = parse_named(opts.summary, "--summary")
    if not summaries:
        return None
    mapping = dict(DOMAIN_BENCHMARKS)
    for domain, names in parse_named(opts.domain_benchmarks, "--domain-benchmarks").items():
        mapping[domain] = tuple(n.strip() for n in names.split(",") if n.strip())
    return load_perf(summaries, opts.perf_ref, mapping)


def _settings(opts: argparse.Namespace) -> Any:
    from .inputs import KLSettings

    try:
        kwargs = json.loads(opts.chat_template_kwargs)
    except ValueError as exc:
        raise ConfigError(f"--chat-template-kwargs is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise ConfigError("--chat-template-kwargs must be a JSON object")
    settings = KLSettings(opts.temperature, opts.top_p, opts.max_tokens, opts.samples_per_prompt,
                          opts.n_prompts or None, opts.seed, opts.api, kwargs)  # fmt: skip
    settings.validate()
    if settings.top_p < 1.0:
        logger.warning("--top-p %s < 1: the samples come from a truncated sampler, not the scored distribution",
                       settings.top_p)  # fmt: skip
    return settings


def _check_resume(out: Path, settings: Any) -> dict[str, Any]:
    if not (out / RUN).is_file():
        return {}
    run = read_json(out / RUN)
    before = run.get("settings", {}).get("protocol")
    if before is not None and before != settings.protocol():
        raise ConfigError(f"{out} holds trajectories sampled with {before}, not {settings.protocol()}: "
                          "keep the sampling settings or use a new --out")  # fmt: skip
    return run


def _sample(opts: argparse.Namespace, out: Path) -> tuple[dict[str, Any], Any]:
    from ...eval.client import ClientConfig
    from ..keyed_log import KeyedLog
    from .inputs import PromptEncoder, load_prompts, parse_endpoints, parse_named
    from .sampling import PAIR_KEY, PAIRS, TRAJECTORIES, TRAJECTORY_KEY, KLPlan, run_work

    settings = _settings(opts)
    files = parse_named(opts.prompts, "--prompts")
    experts, multis = parse_endpoints(opts.expert, "--expert"), parse_endpoints(opts.multi, "--multi")
    for flag, given in (("--prompts DOMAIN=FILE", files), ("--expert NAME=URL", experts),
                        ("--multi NAME=URL", multis), ("--tokenizer PATH", opts.tokenizer)):  # fmt: skip
        if not given:
            raise ConfigError(f"give {flag} (or --report-only to recompute from the records in {out})")
    prompts = {d: load_prompts(d, f, settings.n_prompts, settings.seed) for d, f in files.items()}
    client = ClientConfig(concurrency=opts.concurrency, retries=opts.retries, timeout_s=opts.timeout)
    client.validate()
    run = _check_resume(out, settings)
    meta = {
        "settings": {"protocol": settings.protocol(), "samples_per_prompt": settings.samples_per_prompt,
                     "n_prompts": settings.n_prompts},
        "tokenizer": opts.tokenizer,
        "prompts": {d: {"file": str(files[d]), "uids": [p.uid for p in ps]} for d, ps in prompts.items()},
        "experts": {e.name: list(e.urls) for e in experts}, "multis": {m.name: list(m.urls) for m in multis},
        "m2rl_slime": __version__, "created_at": run.get("created_at", utc_now()), "updated_at": utc_now(),
    }  # fmt: skip
    write_json(out / RUN, meta)
    encoder = PromptEncoder(opts.tokenizer, settings.chat_template_kwargs)
    plan = KLPlan(prompts, experts, multis, settings, client, opts.max_failures, False if opts.no_progress else None)
    with KeyedLog(out / TRAJECTORIES, TRAJECTORY_KEY) as trajectories, KeyedLog(out / PAIRS, PAIR_KEY) as pairs:
        work = run_work(plan, encoder, trajectories, pairs)
    return meta, work


def run(opts: argparse.Namespace) -> int:
    from ..keyed_log import locked
    from ..outputs import draw_figures
    from .plot import plot
    from .report import build_report, format_report, write_report

    out = Path(opts.out)
    rule, perf = _rule(opts), _perf(opts)
    with locked(out, "kl"):
        work = None
        if opts.report_only:
            if not (out / RUN).is_file():
                raise ConfigError(f"{out}: no {RUN}; run `analyze kl` with its servers first")
            meta = read_json(out / RUN)
        else:
            meta, work = _sample(opts, out)
        selection = {d: p["uids"] for d, p in meta["prompts"].items()}
        report = build_report(out, selection, list(meta["experts"]), list(meta["multis"]), rule, perf, meta)
        write_report(out, report)
    print(format_report(report))
    for path in draw_figures(plot, out / KL_JSON, logger):
        print(path)
    if work is not None:
        print(f"{work.sampled} trajectories sampled, {work.scored} scored under a multi model, {work.failed} failed")
        for error in work.errors:
            print(f"  failed: {error}")
        return 1 if work.failed else 0
    return 0
