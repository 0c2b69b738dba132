"""Command line of `python -m m2rl_slime.eval`: benchmark evaluation tools (one subcommand per entry of `COMMANDS`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import M2RLError


def _bfcl_env_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bfcl-env",
        help="create the isolated, pinned bfcl-eval venv that scores BFCL multi-turn episodes",
        description="Create (or confirm) a venv with bfcl-eval 2026.3.23 and mpmath in DIR, outside slime's "
        "environment. The BFCL bridge finds it by its folder or $M2RL_BFCL_ENV.",
    )
    p.add_argument("dir", type=Path, help="folder of the venv (created; must be new, empty or an earlier bfcl-env)")
    p.add_argument("--wheelhouse", type=Path, help="install from the wheels in this folder only (no index)")
    p.add_argument("--full", action="store_true", help="install all of bfcl-eval's dependencies (vendor SDKs, torch)")
    p.add_argument("--force", action="store_true", help="rebuild even if DIR already holds a complete environment")
    p.add_argument("--python", default=sys.executable, help="interpreter the venv is made from (default: this one)")


def _bfcl_env(args: argparse.Namespace) -> int:
    from .bfcl.env import EnvOptions, create_env

    record = create_env(args.dir, EnvOptions(args.wheelhouse, args.full, args.force, args.python))
    print(f"bfcl-env ready: {args.dir} ({record['bfcl_eval']}, {record['mpmath']}, python {record['python']})")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = {
    "bfcl-env": (_bfcl_env_parser, _bfcl_env),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (1 with a one-line message on bad input)."""
    parser = argparse.ArgumentParser(prog="python -m m2rl_slime.eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in COMMANDS.values():
        add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command][1](args)
    except M2RLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
