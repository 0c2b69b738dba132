"""``python -m m2rl_slime.analyze plot DIR``: redraw every figure from the JSON results found in DIR.

`PLOTTERS` maps a result file name to the dotted path of its plotter, ``plot(json_path, out_dir) ->
list[Path]``; each analysis that writes a JSON adds one line here. Figures never need the models again.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ..errors import ConfigError

PLOTTERS: dict[str, str] = {
    "curves.json": "m2rl_slime.analyze.curves.plot.plot",
    "weights.json": "m2rl_slime.analyze.weights.plot.plot",
    "kl.json": "m2rl_slime.analyze.neighbours.plot.plot",
    "gains.json": "m2rl_slime.analyze.gains.plot.plot",
    "selfverify.json": "m2rl_slime.analyze.selfverify.plot.plot",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="an analysis output directory")
    parser.add_argument("--out", metavar="DIR", help="where to write the figures (default: DIR)")


def plot_dir(directory: Path, out: Path | None = None) -> list[Path]:
    """Run the plotter of every result file present in `directory`; returns the figures written.

    Raises:
        ConfigError: no known result file in `directory`, or a plotter's own error.
    """
    found = [(name, dotted) for name, dotted in PLOTTERS.items() if (directory / name).is_file()]
    if not found:
        raise ConfigError(f"{directory}: no analysis results to plot (looked for {', '.join(PLOTTERS)})")
    target = out or directory
    target.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, dotted in found:
        module, _, attr = dotted.rpartition(".")
        figures += getattr(importlib.import_module(module), attr)(directory / name, target)
    return figures


def run(args: argparse.Namespace) -> int:
    for path in plot_dir(Path(args.dir), Path(args.out) if args.out else None):
        print(path)
    return 0
