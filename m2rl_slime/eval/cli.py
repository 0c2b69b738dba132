"""``python -m m2rl_slime.eval`` / ``m2rl-eval``: evaluate checkpoints with Avg@K and compare them.

Subcommands: ``run`` (generate and score a suite against SGLang/OpenAI-compatible servers), ``collect``
(slime's saved eval rollouts -> samples), ``score`` (re-score saved samples), ``summarize`` (Avg@K +- s.e.
per benchmark), ``compare`` (Tables 2-4), ``suites`` (list or show suites). Bad input exits 2 with one
line naming it; a run with failed samples exits 1 (rerun it to retry them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError, M2RLError

PROG = "python -m m2rl_slime.eval"
logger = logging.getLogger(__name__)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def _data_dir(value: str | None) -> Path:
    if value:
        return Path(value)
    if os.environ.get("M2RL_EVAL_DATA_DIR"):
        return Path(os.environ["M2RL_EVAL_DATA_DIR"])
    if os.environ.get("DATA_DIR"):
        return Path(os.environ["DATA_DIR"]) / "eval"
    raise ConfigError("where are the prepared benchmark files? pass --data-dir (or set M2RL_EVAL_DATA_DIR)")


def _scorer_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scorers")
    group.add_argument("--judge-url", help="OpenAI-compatible server of the HLE judge")
    group.add_argument("--judge-model", help="the judge model's name on that server")
    group.add_argument("--judge-concurrency", type=int, default=16, metavar="N", help="judge requests in flight")
    group.add_argument("--bfcl-venv", help="virtual environment with BFCL's reference checker (bfcl-eval)")
    group.add_argument("--workers", type=int, default=0, metavar="N", help="verifier processes (0: default)")


def _settings(opts: argparse.Namespace, reward: dict) -> object:
    from .scorers import ScorerSettings

    return ScorerSettings(
        reward=reward, workers=opts.workers, judge_url=opts.judge_url, judge_model=opts.judge_model,
        judge_concurrency=opts.judge_concurrency, bfcl_venv=opts.bfcl_venv,
    )  # fmt: skip


def _cmd_run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} run", description="Generate and score a suite's samples "
                                     "against SGLang or OpenAI-compatible servers (resumable).")  # fmt: skip
    parser.add_argument("--base-url", nargs="+", required=True, metavar="URL", help="server(s) of one model")
    parser.add_argument("--suite", required=True, help="suite name (recipes/eval/NAME.yaml) or path")
    parser.add_argument("--out", required=True, help="evaluation directory (created; resumed when it exists)")
    parser.add_argument("--data-dir", help="prepared benchmark files (default: $M2RL_EVAL_DATA_DIR, $DATA_DIR/eval)")
    parser.add_argument("--only", help="comma-separated benchmarks of the suite")
    parser.add_argument("--limit", type=int, metavar="N", help="first N items of every benchmark (smoke runs)")
    parser.add_argument("--model-id", help="the model's name (default: the server's /v1/models)")
    parser.add_argument("--model-path", help="its HF checkpoint (hashed into ckpt_sha; tokenizer of --api generate)")
    parser.add_argument("--tokenizer", help="tokenizer of --api generate (default: --model-path)")
    parser.add_argument("--api", choices=("chat", "generate"), default="chat",
                        help="chat completions (default) or SGLang /generate (templated here, as slime does)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=32, metavar="N", help="requests in flight per URL")
    parser.add_argument("--retries", type=int, default=5, metavar="N", help="retries of a failed request")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="deadline of one request")
    parser.add_argument("--max-failures", type=int, default=50, metavar="N", help="stop after N failed samples")
    parser.add_argument("--no-score", action="store_true", help="generate only; score later with `eval score`")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _scorer_args(parser)
    opts = parser.parse_args(argv)
    from .client import ClientConfig
    from .runner import RunOptions, run_suite
    from .suite import load_suite
    from .summary import format_summary, summarize

    suite = load_suite(opts.suite, _names(opts.only))
    if opts.limit is not None:
        if opts.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {opts.limit}")
        suite = replace(suite, benchmarks=tuple(replace(b, limit=min(b.limit or opts.limit, opts.limit)) for b in suite.benchmarks))  # fmt: skip
    client = ClientConfig(concurrency=opts.concurrency, retries=opts.retries, timeout_s=opts.timeout)
    client.validate()
    options = RunOptions(
        urls=tuple(opts.base_url), out=Path(opts.out), data_dir=_data_dir(opts.data_dir), model_id=opts.model_id,
        model_path=opts.model_path, tokenizer=opts.tokenizer, api=opts.api, client=client,
        scorer=_settings(opts, suite.reward), score=not opts.no_score, progress=False if opts.no_progress else None,
        max_failures=opts.max_failures,
    )  # fmt: skip
    report = run_suite(suite, options)
    for name, why in report.missing.items():
        print(f"{name}: missing ({why})")
    for name, why in report.pending.items():
        print(f"{name}: pending ({why})")
    print(f"{report.written} samples written, {report.existing} already present, {report.failed} failed")
    for error in report.errors:
        print(f"  failed: {error}")
    print(format_summary(summarize(options.out)))
    return 1 if report.failed else 0


def _cmd_collect(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} collect", description="Turn slime's saved eval rollouts "
                                     "(--save-debug-rollout-data) into samples.jsonl and items.jsonl.")  # fmt: skip
    parser.add_argument("paths", nargs="+", help="eval_*.pt files, or an eval run's OUT (searched for raw/eval_*.pt)")
    parser.add_argument("--out", help="evaluation directory (default: the single directory given)")
    parser.add_argument("--suite", help="suite name for samples without an m2rl_eval record (in-training evals)")
    parser.add_argument("--model-id", help="model name for such samples")
    parser.add_argument("--model-path", help="checkpoint of such samples (hashed into ckpt_sha)")
    parser.add_argument("--allow-pickle", action="store_true", help="load rollout files with full unpickling")
    opts = parser.parse_args(argv)
    from .collect import collect
    from .summary import format_summary, summarize

    out = opts.out or (opts.paths[0] if len(opts.paths) == 1 and Path(opts.paths[0]).is_dir() else None)
    if out is None:
        raise ConfigError("pass --out DIR (the evaluation directory to write)")
    fallback = {k: v for k, v in (("suite", opts.suite), ("model_id", opts.model_id), ("model_path", opts.model_path)) if v}  # fmt: skip
    report = collect(opts.paths, out, fallback=fallback, allow_pickle=opts.allow_pickle)
    print(f"{report.written} samples collected from {len(report.files)} file(s), {report.existing} already present")
    print(format_summary(summarize(out)))
    return 0


def _cmd_score(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} score", description="Score saved samples without "
                                     "regenerating: pending ones, other scorer versions, chosen reasons, or all.")  # fmt: skip
    parser.add_argument("directory", help="evaluation directory")
    parser.add_argument("--suite", help="suite (default: the one in run.json)")
    parser.add_argument("--only", help="comma-separated benchmarks")
    parser.add_argument("--force", action="store_true", help="re-score every sample")
    parser.add_argument("--reasons", help="also re-score samples with these reasons (e.g. sandbox_error)")
    parser.add_argument("--scorer", action="append", default=[], metavar="BENCH=NAME", help="use another scorer")
    parser.add_argument("--data-dir", help="where the prepared files are now (default: as in run.json)")
    parser.add_argument("--no-progress", action="store_true")
    _scorer_args(parser)
    opts = parser.parse_args(argv)
    from .rescore import score_samples
    from .summary import format_summary, summarize

    overrides = {}
    for item in opts.scorer:
        name, sep, scorer = item.partition("=")
        if not sep or not name or not scorer:
            raise ConfigError(f"--scorer {item!r}: expected BENCH=NAME")
        overrides[name] = scorer
    only = _names(opts.only)
    report = score_samples(
        opts.directory, opts.suite, settings=_settings(opts, {}), force=opts.force,
        reasons=_names(opts.reasons), scorer_overrides=overrides, data_dir=opts.data_dir,
        progress=False if opts.no_progress else None, only=only,
    )  # fmt: skip
    for name, why in report.unavailable.items():
        print(f"{name}: pending ({why})")
    print(f"{report.scored} samples scored, {report.kept} kept")
    print(format_summary(summarize(opts.directory)))
    return 0


def _cmd_summarize(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} summarize", description="Avg@K +- standard error per "
                                     "benchmark (with n, K, sampling, scorer); writes DIR/summary.json.")  # fmt: skip
    parser.add_argument("directories", nargs="+", help="evaluation directories")
    parser.add_argument("--json", action="store_true", help="print the summary JSON instead of the table")
    opts = parser.parse_args(argv)
    from .summary import format_summary, summarize

    for directory in opts.directories:
        summary = summarize(directory)
        print(json.dumps(summary, indent=2) if opts.json else format_summary(summary))
    return 0


def _cmd_compare(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} compare", description="Models side by side: Table 3 "
                                     "(benchmarks x models), Table 4 (merge methods), Table 2 (GPU hours).")  # fmt: skip
    parser.add_argument("directories", nargs="+", help="evaluation directories, one per model")
    parser.add_argument(
        "--layout", choices=("paper", "long"), default="paper", help="paper tables or one row per score"
    )
    parser.add_argument("--names", help="comma-separated model labels, one per directory")
    parser.add_argument("--merge", action="append", default=[], metavar="MODEL", help="a Table 4 row (default: "
                        "models whose checkpoint has a merge manifest)")  # fmt: skip
    parser.add_argument("--cost", action="append", default=[], metavar="MODEL=RECORD[,RECORD]",
                        help="the run record(s) or save dir(s) a model's GPU hours come from")  # fmt: skip
    parser.add_argument("--out", help="write compare.json, tables.md, table3.csv, table4.csv, chart.png here")
    png = parser.add_mutually_exclusive_group()
    png.add_argument("--png", dest="png", action="store_true", default=None, help="require the chart (matplotlib)")
    png.add_argument("--no-png", dest="png", action="store_false", help="no chart")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    opts = parser.parse_args(argv)
    from .compare import CompareOptions, compare
    from .cost import parse_cost_args
    from .report import _csv, long_rows, markdown, write_outputs

    if opts.resamples < 100:
        raise ConfigError(f"--resamples must be >= 100, got {opts.resamples}")
    options = CompareOptions(names=_names(opts.names), merges=tuple(opts.merge), cost=parse_cost_args(opts.cost),
                             seed=opts.seed, resamples=opts.resamples)  # fmt: skip
    comparison = compare(opts.directories, options)
    print(markdown(comparison) if opts.layout == "paper" else _csv(long_rows(comparison)), end="")
    if opts.out:
        for path in write_outputs(comparison, opts.out, png=opts.png):
            print(f"wrote {path}")
    elif opts.png:
        raise ConfigError("--png needs --out DIR")
    return 0


def _cmd_suites(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} suites", description="List the shipped suites, or show one.")
    parser.add_argument("suite", nargs="?", help="a suite to show")
    opts = parser.parse_args(argv)
    from .suite import load_suite, suites_dir

    if opts.suite is None:
        for path in sorted(suites_dir().glob("*.yaml")):
            suite = load_suite(path)
            print(f"{suite.name:<10} {len(suite.benchmarks)} benchmarks  {suite.description}")
        return 0
    suite = load_suite(opts.suite)
    print(f"{suite.name} ({suite.sha}): {suite.description}")
    for b in suite.benchmarks:
        extra = f" driver={b.driver}" if b.driver else ""
        print(f"  {b.name:<14} K={b.k:<3} n={b.n or '-':<5} domain={b.domain} scorer={b.scorer}{extra} file={b.file}"
              f" {json.dumps(b.sampling.to_dict())}")  # fmt: skip
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": _cmd_run,
    "collect": _cmd_collect,
    "score": _cmd_score,
    "summarize": _cmd_summarize,
    "compare": _cmd_compare,
    "suites": _cmd_suites,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``m2rl-eval``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="m2rl-eval: %(message)s")
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(__doc__.strip().split("\n\n")[0] + "\n\nusage: " + PROG + " {" + ",".join(COMMANDS) + "} ...")
        return 0 if not args or args[0] in ("-h", "--help") else 2
    try:
        return COMMANDS[args[0]](args[1:])
    except M2RLError as exc:
        print(f"m2rl-eval {args[0]}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print(f"m2rl-eval {args[0]}: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
