"""The ``prepare-sft`` subcommand of ``python -m m2rl_slime.data`` (see `m2rl_slime.data.sft_blend`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .sft_rules import FORMATS

DEFAULT_SEED = 42
MAX_WORKERS = 8


def default_workers(cores: int | None = None) -> int:
    """Worker processes by default: one core stays with the main process (reading, tallying, writing) and
    the shard writer thread, so workers only pay off from 3 usable cores; 1 (parse in the main process)
    below that."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, cores - 1))


def add_prepare_sft(sub: Any) -> None:
    """Register ``prepare-sft`` on the subparsers of the data CLI."""
    sft = sub.add_parser(
        "prepare-sft",
        help="SFT sources -> one sharded, validated, exactly counted blend for SFTDataSource",
        description="Stream SFT conversation files into one blend: PATH::NAME[:RULE] sources or a blend YAML "
        "(e.g. recipes/data/sft_table1.yaml, the paper's Table 1). Rules: all, repeat=K, sample=N, fraction=F.",
    )
    given = sft.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--source",
        nargs="+",
        action="extend",
        metavar="PATH::NAME[:RULE]",
        help="a source: a .jsonl/.parquet file, a directory of them or a glob, its name, its rule (default all)",
    )
    given.add_argument("--blend", type=Path, help="blend YAML (seed and sources: name -> path, rule, share, rows)")
    sft.add_argument("--inputs", type=Path, help="directory that relative source paths start from (default: .)")
    sft.add_argument("--out", required=True, type=Path, help="output directory (new, empty, or a previous blend)")
    sft.add_argument("--seed", type=int, help=f"seed of the draws (default: the blend's, else {DEFAULT_SEED})")
    sft.add_argument("--format", choices=FORMATS, help="shard format (default parquet; jsonl without pyarrow)")
    sft.add_argument("--shard-rows", type=int, default=100_000, help="rows per shard (default 100000)")
    sft.add_argument("--row-group-rows", type=int, default=32, help="rows per parquet row group (default 32)")
    sft.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes that parse and check jsonl rows (default: one less than the usable cores, at most 8; "
        "1 = none, in this process)",
    )
    sft.add_argument(
        "--fill-source",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME[:SPLIT]=PATH",
        help="a local download that fills the '-' placeholder user turns of Nemotron-Competitive-Programming-v1: "
        "NAME one of taco, apps, code_contests, codeforces; PATH a file, folder or glob of its split files "
        "(replaces the blend's fill_sources entry of NAME). Without any, such rows are dropped",
    )
    sft.add_argument(
        "--no-fill",
        action="store_true",
        help="drop the rows with a '-' placeholder user turn instead of filling them (ignores the blend's fill_sources)",
    )
    sft.add_argument("--limit", type=int, help="read at most this many input rows per source (quick trial)")
    sft.add_argument("--strict", action="store_true", help="fail on the first bad row instead of dropping it")
    sft.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_prepare_sft(args: argparse.Namespace) -> int:
    """Run ``prepare-sft`` from parsed flags; prints the summary table and returns 0."""
    from ..errors import ConfigError
    from .sft_blend import SFTOptions, prepare_sft
    from .sft_fill import FillSource, merge_fill
    from .sft_rules import Blend, SourceSpec, read_blend

    if args.blend is not None:
        blend = read_blend(args.blend)
    else:
        blend = Blend(tuple(SourceSpec.parse(text) for text in args.source))
    if args.no_fill and args.fill_source:
        raise ConfigError("--no-fill and --fill-source exclude each other: drop the placeholder rows or fill them")
    fill = () if args.no_fill else merge_fill(blend.fill, [FillSource.parse(text) for text in args.fill_source])
    sources, seed = list(blend.sources), blend.seed
    options = SFTOptions(
        seed=args.seed if args.seed is not None else (seed if seed is not None else DEFAULT_SEED),
        fmt=args.format,
        shard_rows=args.shard_rows,
        row_group_rows=args.row_group_rows,
        limit=args.limit,
        strict=args.strict,
        progress=False if args.no_progress else None,
        root=args.inputs,
        workers=args.workers,
        fill=fill,
    )
    summary = prepare_sft(sources, args.out, options)
    print(summary.table())
    manifest = summary.manifest
    print(f"wrote {summary.out_dir} ({manifest['total_rows']} rows, {manifest['format']}, seed {manifest['seed']})")
    return 0
