"""``python -m m2rl_slime.analyze curves RUN... --out DIR``: the study's training figures (paper Figs. 2 and 9).

Reads each run's TensorBoard event files (or a wandb export), aligns them by rollout step, smooths them as
TensorBoard does and writes ``curves.csv``, ``runs.csv``, ``curves.json`` and one PNG per figure
(``fig9_reward``, ``fig2_benchmarks``, ``truncation``, ``response_len``). ``--list`` prints the metrics
of each run and the figure each one feeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from ...errors import ConfigError, UnknownNameError
from .figures import DEFAULT_FIGURES, FigureSpec, Metric, describe, gpu_label, select
from .output import write_outputs
from .sources import RunData, load_runs

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="[NAME=]RUN",
        help="a run's save dir (TensorBoard under tensorboard/), a TensorBoard dir or event file, or a wandb "
        "export (.csv/.json/.jsonl); NAME= overrides the run's name",
    )
    parser.add_argument("--out", metavar="DIR", help="where to write the CSV, JSON and PNG files")
    parser.add_argument("--list", action="store_true", help="print each run's metrics and the figure each feeds")
    parser.add_argument(
        "--smoothing", type=float, default=0.6, metavar="W", help="EMA weight of rollout curves, [0, 1) (0.6)"
    )
    parser.add_argument(
        "--eval-smoothing",
        type=float,
        default=0.0,
        metavar="W",
        help="EMA weight of the benchmark curves (0: none; evals are sparse and already averaged)",
    )
    parser.add_argument(
        "--benchmarks",
        metavar="A,B,...",
        help="the Fig. 2 panels, in order (eval set names, e.g. aime24,lcb,gpqa_diamond,ifeval,bfcl); default: all",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="FIGURE=REGEX",
        help=f"replace a figure's metric patterns (repeatable, tried in order; a (?P<key>...) group names the "
        f"line or panel); figures: {', '.join(DEFAULT_FIGURES)}",
    )
    parser.add_argument(
        "--record",
        action="append",
        default=[],
        metavar="RUN=PATH",
        help="the run record (m2rl_run_record.json) of a run, when it is not in the run's dir or its parent",
    )
    parser.add_argument(
        "--no-plot", action="store_true", help="write the numbers only (draw them later with: analyze plot DIR)"
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the data checksums of event files (lengths are still checked)"
    )


def _pairs(values: Sequence[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"{flag} {value!r}: expected NAME=VALUE")
        pairs.append((name, rest))
    return pairs


def figure_specs(metrics: Sequence[str], benchmarks: str | None) -> dict[str, FigureSpec]:
    """The default figures with the command line's `--metric` and `--benchmarks` applied."""
    specs = dict(DEFAULT_FIGURES)
    custom: dict[str, list[Metric]] = {}
    for figure, pattern in _pairs(metrics, "--metric"):
        if figure not in specs:
            raise UnknownNameError("figure", figure, specs)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"--metric {figure}={pattern}: not a regular expression ({exc})") from None
        custom.setdefault(figure, []).append(Metric(pattern, pattern))
    for figure, patterns in custom.items():
        specs[figure] = dataclasses.replace(specs[figure], metrics=tuple(patterns))
    if benchmarks:
        keys = tuple(k.strip() for k in benchmarks.split(",") if k.strip())
        specs["fig2_benchmarks"] = dataclasses.replace(specs["fig2_benchmarks"], keys=keys)
    return specs


def list_metrics(runs: Sequence[RunData], specs: dict[str, FigureSpec]) -> str:
    """One header line per run, then one line per metric: points, step range and the figure it feeds."""
    lines = []
    for run in runs:
        files = f"{len(run.files)} file(s)"
        lines.append(f"{gpu_label(run)}  [{run.kind}: {run.source}, {files}, last step {run.last_step}]")
        feeds: dict[str, list[str]] = {}
        for spec in specs.values():
            for key, tag in select(run, spec)[1].items():
                feeds.setdefault(tag, []).append(f"{spec.id}:{key}")
        width = max((len(tag) for tag in run.scalars), default=0)
        for tag, series in run.scalars.items():
            used = f"  -> {', '.join(feeds[tag])}" if tag in feeds else ""
            span = f"steps {series.steps[0]}..{series.steps[-1]}"
            lines.append(f"  {tag:<{width}}  {len(series):>6} points  {span}{used}")
        lines += [f"  ! {warning}" for warning in run.warnings]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    specs = figure_specs(args.metric, args.benchmarks)
    records = dict(_pairs(args.record, "--record"))
    if not args.list and not args.out:
        raise ConfigError("--out DIR is required (or --list to see the runs' metrics)")
    runs = load_runs(args.runs, records=records, verify=not args.no_verify)
    if args.list:
        print(list_metrics(runs, specs))
        return 0
    for run_data in runs:
        for warning in run_data.warnings:
            log.warning("%s: %s", run_data.name, warning)
    description = describe(runs, specs, smoothing=args.smoothing, eval_smoothing=args.eval_smoothing)
    for note in description["notes"]:
        log.info("%s", note)
    for missing in description["missing"]:
        log.warning("missing: %s", missing["message"])
    out = Path(args.out)
    from .plot import HINT, have_matplotlib, plot

    try:
        written = write_outputs(description, out)
        if have_matplotlib() and not args.no_plot:
            written += plot(out / "curves.json", out)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the results: {exc.strerror or exc}") from None
    if not have_matplotlib() and not args.no_plot:
        log.warning(
            "figures not drawn (numbers written): matplotlib is not installed: %s", HINT.replace("DIR", str(out))
        )
    for path in written:
        print(path)
    return 0
