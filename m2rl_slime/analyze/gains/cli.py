"""``python -m m2rl_slime.analyze gains``: gain consistency of Fig. 5 from the evaluation runner's
``items.jsonl`` (`core` computes, `plot` draws). Writes ``gains.json``, ``gains.csv`` and
``fig5_gains.png`` into ``--out``; needs no server.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .core import DEFAULT_BENCHMARKS

logger = logging.getLogger(__name__)
GAINS_JSON, GAINS_CSV = "gains.json", "gains.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sft", required=True, metavar="DIR", help="the SFT model's evaluation (items.jsonl)")
    parser.add_argument("--sft-reseed", metavar="DIR", help="a second SFT evaluation, another seed (noise floor)")
    parser.add_argument(
        "--expert",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a single-domain expert's evaluation (repeat; their union is g_union)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a compared model's evaluation: RL-Multi, each merge, MT-OPD (repeat; bar order)",
    )
    parser.add_argument(
        "--benchmarks",
        default=",".join(DEFAULT_BENCHMARKS),
        metavar="B1,B2",
        help=f"benchmarks (default {','.join(DEFAULT_BENCHMARKS)})",
    )
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000; 0: none)")
    parser.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")


def _csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for bench, res in report["results"].items():
        if not res["n_items"]:
            rows.append([bench, None, None, None, None, None, 0, None, None, None, res["reason"]])
            continue
        entries = [("model", m, e) for m, e in res["models"].items()]
        entries += [("expert", m, e) for m, e in res["experts"].items()]
        entries.append(("noise_floor", "sft_reseed", res["noise_floor"]))
        for role, name, e in entries:
            rows.append([bench, role, name, e.get("cos"), e.get("low"), e.get("high"), res["n_items"],
                         e.get("nonzero"), res["union"]["nonzero"], e.get("valid_resamples"), e.get("reason")])  # fmt: skip
    return rows


def _format(report: dict[str, Any]) -> str:
    models = report["models"]
    lines = ["cos(g_union, g_model) per benchmark [95% bootstrap interval]; noise = cos(g_union, g_sft')"]
    lines.append(f"{'benchmark':<14} {'n':>5} " + "".join(f"{m:>24}" for m in models) + f"{'noise':>24}")
    for bench, res in report["results"].items():
        if not res["n_items"]:
            lines.append(f"{bench:<14} {0:>5}  {res['reason']}")
            continue
        cells = [res["models"][m] for m in models] + [res["noise_floor"]]
        text = []
        for e in cells:
            if e.get("cos") is None:
                text.append(f"{'n/a':>24}")
            elif e.get("low") is None:
                text.append(f"{e['cos']:>24.3f}")
            else:
                text.append(f"{e['cos']:.3f} [{e['low']:.2f},{e['high']:.2f}]".rjust(24))
        lines.append(f"{bench:<14} {res['n_items']:>5} " + "".join(text))
        mismatch = res.get("mismatch", {})
        for name, m in mismatch.items():
            if m["missing"]:
                lines.append(f"{'':<14}  {name} lacks {m['missing']} item(s), e.g. {', '.join(m['missing_examples'])}")
        dropped = max((m["not_common"] for m in mismatch.values()), default=0)
        if dropped:
            lines.append(f"{'':<14}  up to {dropped} item(s) of an input dropped: not evaluated by every input")
    return "\n".join(lines)


def run(opts: argparse.Namespace) -> int:
    from ..neighbours.inputs import parse_named
    from ..outputs import draw_figures, save_csv, save_json
    from .core import GainSettings, gains_report, load_items
    from .plot import plot

    experts, models = parse_named(opts.expert, "--expert"), parse_named(opts.model, "--model")
    if not experts or not models:
        raise ConfigError("give at least one --expert NAME=DIR and one --model NAME=DIR")
    names = ["sft", "sft_reseed", *experts, *models]
    if len(set(names)) != len(names):
        raise ConfigError(f"names must differ from each other and from sft/sft_reseed: {', '.join(names)}")
    benchmarks = [b.strip() for b in opts.benchmarks.split(",") if b.strip()]
    if not benchmarks:
        raise ConfigError("--benchmarks is empty")
    settings = GainSettings(opts.resamples, opts.level, opts.seed)
    settings.validate()
    reseed = load_items(opts.sft_reseed) if opts.sft_reseed else None
    report = gains_report(benchmarks, load_items(opts.sft), reseed, {n: load_items(p) for n, p in experts.items()},
                          {n: load_items(p) for n, p in models.items()}, settings)  # fmt: skip
    report = {"analysis": "gains", **report, "models": list(models), "experts": list(experts),
              "inputs": {"sft": opts.sft, "sft_reseed": opts.sft_reseed, **experts, **models},
              "resamples": settings.resamples, "level": settings.level, "seed": settings.seed}  # fmt: skip
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / GAINS_JSON, report)
    header = ("benchmark", "role", "name", "cos", "low", "high", "n_items", "nonzero", "union_nonzero",
              "valid_resamples", "reason")  # fmt: skip
    save_csv(out / GAINS_CSV, header, _csv_rows(report))
    print(_format(report))
    for path in draw_figures(plot, out / GAINS_JSON, logger):
        print(path)
    return 0
