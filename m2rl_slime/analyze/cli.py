"""Command line of `python -m m2rl_slime.analyze`: one subcommand per analysis, each in its own module.

Each entry of `SUBCOMMANDS` names a module that defines ``add_arguments(parser)`` and ``run(args) -> int``;
the module is imported only when its subcommand runs (``--help`` of the top level imports none of them).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import M2RLError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "curves": (
        "m2rl_slime.analyze.curves.cli",
        "training curves of runs: reward per domain (Fig. 9), benchmarks (Fig. 2), truncation, response length",
    ),
    "weights": (
        "m2rl_slime.analyze.weights.cli",
        "weight-shift footprints of RL experts vs their SFT base: Jaccard, cosines (Table 5, Fig. 3)",
    ),
    "kl": (
        "m2rl_slime.analyze.neighbours.cli",
        "KL cross-comparison of experts and multi-domain models, policy neighbourhoods (Fig. 4, Eq. 1)",
    ),
    "subsets": (
        "m2rl_slime.analyze.neighbours.subsets",
        "merge recipes of each domain with each candidate neighbour (the Table 6 ablation)",
    ),
    "gains": ("m2rl_slime.analyze.gains.cli", "gain consistency: per-item gains over SFT vs the experts' (Fig. 5)"),
    "selfverify": (
        "m2rl_slime.analyze.selfverify.cli",
        "each model judges its own trajectories, outcome and process mode (Table 7, Figs. 6-8)",
    ),
    "plot": ("m2rl_slime.analyze.plot", "redraw every figure from the JSON results in a directory"),
}


def _parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m m2rl_slime.analyze", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            importlib.import_module(module).add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one analysis subcommand; returns the exit status (2 for bad input, with one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in SUBCOMMANDS), None)
    args = _parser(selected).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(importlib.import_module(SUBCOMMANDS[args.command][0]).run(args) or 0)
    except M2RLError as exc:
        print(f"analyze {args.command}: {exc}", file=sys.stderr)
        return 2
