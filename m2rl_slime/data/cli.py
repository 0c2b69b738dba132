"""Command line of `python -m m2rl_slime.data`: ``prepare`` (RL training blend), ``prepare-eval`` (benchmarks)
and ``prepare-sft`` (the SFT blend)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import parse_dataclass
from ..errors import ConfigError, M2RLError
from .config import DataConfig, PrepareConfig
from .evalsets import EvalOptions, eval_kinds, prepare_eval
from .prepare import SOURCE_SEPARATOR, PrepareOptions, Summary, prepare_blend


def load_prepare_config(path: str | None) -> PrepareConfig:
    """`m2rl_data.prepare` from a ``--custom-config-path`` style YAML (defaults when `path` is None)."""
    if path is None:
        return PrepareConfig()
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: cannot read YAML ({exc})") from None
    if not isinstance(document, dict) or "m2rl_data" not in document:
        raise ConfigError(f"--config {path}: no top-level m2rl_data key")
    return parse_dataclass(DataConfig, document["m2rl_data"], f"{path}: m2rl_data").prepare


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m m2rl_slime.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="Nemotron RL blend -> OUT/<domain>.jsonl prompt files for slime")
    prep.add_argument(
        "--blend",
        nargs="+",
        action="extend",
        required=True,
        metavar=f"PATH[{SOURCE_SEPARATOR}SOURCE]",
        help=f"blend rows (.jsonl/.parquet); {SOURCE_SEPARATOR}SOURCE forces the source of every row",
    )
    prep.add_argument("--out", required=True, type=Path, help="output directory")
    prep.add_argument("--limit", type=int, help="read at most this many input rows (quick sample)")
    prep.add_argument("--dedup", action="store_true", help="drop repeated prompts within a domain")
    prep.add_argument("--max-prompt-tokens", type=int, help="drop prompts longer than this (needs --tokenizer)")
    prep.add_argument("--tokenizer", help="tokenizer directory used by --max-prompt-tokens (chat template + tools)")
    prep.add_argument(
        "--skip-unknown-sources",
        action="store_true",
        help="skip rows whose source maps to no domain instead of failing",
    )
    prep.add_argument("--strict", action="store_true", help="fail on the first bad row instead of dropping it")
    eva = sub.add_parser("prepare-eval", help="a local benchmark file -> prepared eval rows")
    eva.add_argument("--kind", required=True, choices=sorted(eval_kinds()), help="benchmark kind")
    eva.add_argument(
        "--input", required=True, type=Path, help="benchmark rows (.jsonl/.parquet); bfcl: the data folder"
    )
    eva.add_argument("--out", required=True, type=Path, help="output .jsonl file")
    eva.add_argument("--seed", type=int, default=0, help="seed of the GPQA option shuffle (default 0)")
    eva.add_argument("--name", help="metadata source name (default: input file stem)")
    eva.add_argument("--limit", type=int, help="read at most this many rows")
    eva.add_argument("--strict", action="store_true", help="fail on the first bad row instead of dropping it")
    eva.add_argument(
        "--categories",
        action="append",
        metavar="v3|ast|multi_turn|NAME[,NAME]",
        help="bfcl: categories to prepare (default v3: the 13 single-turn and 4 multi-turn categories)",
    )
    eva.add_argument("--underscore-names", action="store_true", help="bfcl: replace dots in tool names by underscores")
    from .sft_cli import add_prepare_sft

    add_prepare_sft(sub)
    for p in (prep, eva):
        p.add_argument("--config", help="YAML with a top-level m2rl_data key (its prepare section is used)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run_prepare(args: argparse.Namespace) -> Summary:
    options = PrepareOptions(
        limit=args.limit,
        dedup=args.dedup,
        max_prompt_tokens=args.max_prompt_tokens,
        tokenizer=args.tokenizer,
        skip_unknown_sources=args.skip_unknown_sources,
        strict=args.strict,
        progress=False if args.no_progress else None,
    )
    return prepare_blend(args.blend, args.out, load_prepare_config(args.config), options)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (1 with a one-line message on bad input)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "prepare-sft":
            from .sft_cli import run_prepare_sft

            return run_prepare_sft(args)
        if args.command == "prepare":
            summary = _run_prepare(args)
            print(summary.table())
            for domain, path in sorted(summary.files.items()):
                print(f"wrote {path} ({summary.domains[domain].rows_out} rows)")
            return 0
        options = EvalOptions(
            args.seed,
            args.name,
            args.limit,
            args.strict,
            False if args.no_progress else None,
            tuple(args.categories or ("v3",)),
            args.underscore_names,
        )
        tally = prepare_eval(args.input, args.out, args.kind, load_prepare_config(args.config), options)
        dropped = ", ".join(f"{r}={n}" for r, n in sorted(tally.dropped.items())) or "none"
        print(f"{args.kind}: rows in {tally.rows_in}, rows out {tally.rows_out}, dropped: {dropped}")
        for note in tally.notes:
            print(f"  {note}")
        print(f"wrote {args.out}")
        return 0
    except M2RLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
