"""`prepare-sft`: SFT sources (jsonl/parquet, any size) -> one sharded, validated, exactly counted blend.

Not a slime hook; its output is read by `m2rl_slime.data.SFTDataSource`. Memory stays bounded: rows
are streamed, never collected. A source whose rule needs its valid-row count (``sample=N``,
``fraction=F``) is read twice: a counting pass that validates every row and keeps one byte per input row
(invalid / valid as is / valid after a fix), then a writing pass that draws the rows (`sft_rules.copies`)
and copies each chosen valid line byte for byte (only fixed rows are parsed again and re-encoded).
``all``/``repeat=K`` sources are written in their single pass.

All or nothing: everything is written into a hidden work directory next to ``--out``; ``manifest.json``
is written last and the directory is renamed into place only when every source succeeded. A failed or
interrupted run leaves no ``--out`` that looks complete (an existing blend there stays untouched).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError
from .sft_rows import CLEAN, check_row
from .sft_rules import SourceSpec, check_sources, copies, resolve_files, selection_rng
from .sft_scan import INVALID, Record, encode, jsonl_records, parquet_records
from .sft_shards import MANIFEST, MANIFEST_KIND, MANIFEST_VERSION, ShardWriter, have_pyarrow

logger = logging.getLogger(__name__)

_EXAMPLES_PER_REASON = 3


@dataclass(frozen=True, slots=True)
class SFTOptions:
    """Run options of `prepare_sft` (the CLI flags)."""

    seed: int = 42
    fmt: str | None = None  # None: parquet when pyarrow is importable, else jsonl
    shard_rows: int = 100_000
    row_group_rows: int = 32
    limit: int | None = None  # input rows read per source
    strict: bool = False
    progress: bool | None = None  # None: a bar only on a terminal
    root: Path | None = None  # base of relative source paths
    workers: int = 1  # processes that parse and check jsonl chunks (1: in this process)


@dataclass(slots=True)
class SourceTally:
    """What one source contributed."""

    spec: SourceSpec
    files: list[dict] = field(default_factory=list)
    rows_in: int = 0
    invalid: Counter = field(default_factory=Counter)
    clean: int = 0
    fixed: int = 0
    placeholder_user: int = 0
    wanted: int = 0
    rows_out: int = 0
    shards: list[dict] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return self.clean + self.fixed


class _Source:
    """Reads, validates and writes one source (state of one source's passes)."""

    def __init__(self, tally: SourceTally, files: list[Path], writer: ShardWriter, options: SFTOptions, pool: Any):
        self.tally, self.files, self.writer, self.options, self.pool = tally, files, writer, options, pool
        self.examples: Counter = Counter()

    def records(self, desc: str, total: int | None, check: bool, encode_fixed: bool = False) -> Iterator[Record]:
        """Every input row up to the limit, checked or not, behind a progress bar."""
        from tqdm import tqdm

        disable = None if self.options.progress is None else not self.options.progress
        seen = 0
        with tqdm(total=total, unit="rows", desc=desc, disable=disable, unit_scale=True) as bar:
            for file in self.files:
                if file.suffix == ".parquet":
                    rows = parquet_records(file, check, encode_fixed)
                else:
                    rows = jsonl_records(file, self.pool, check, encode_fixed, 2 * self.options.workers)
                for record in rows:
                    if self.options.limit is not None and seen >= self.options.limit:
                        return
                    seen += 1
                    bar.update(1)
                    yield record

    def count(self, record: Record) -> int:
        """Tally one checked row; returns its code (raises on a bad row in strict mode)."""
        tally = self.tally
        tally.rows_in += 1
        if record.error is not None:
            reason, message = record.error
            if self.options.strict:
                raise ConfigError(f"{record.where}: {reason}: {message}")
            tally.invalid[reason] += 1
            self.examples[reason] += 1
            if self.examples[reason] <= _EXAMPLES_PER_REASON:
                logger.warning("dropped (%s) %s: %s", reason, record.where, message)
            return INVALID
        if record.code == CLEAN:
            tally.clean += 1
        else:
            tally.fixed += 1
        tally.placeholder_user += record.placeholder
        return record.code

    def count_pass(self) -> bytearray:
        return bytearray(self.count(r) for r in self.records(f"{self.tally.spec.name} (count)", None, check=True))

    def write_pass(self, codes: bytearray, seed: int) -> None:
        tally = self.tally
        tally.wanted = tally.spec.rule.wanted(tally.valid)
        plan = copies(tally.valid, tally.wanted, selection_rng(seed, tally.spec.name))
        for i, record in enumerate(self.records(f"{tally.spec.name} (write)", tally.rows_in, check=False)):
            if codes[i] == INVALID:
                continue
            n = next(plan)
            if n == 0:
                continue
            if codes[i] == CLEAN and record.raw is not None:
                self.writer.write(record.raw, n)
            else:  # a parquet row, or a jsonl row that needed a fix: check it again
                row = record.row if record.raw is None else json.loads(record.raw)
                self.writer.write(encode(check_row(row)[1]), n)
            tally.rows_out += n

    def single_pass(self) -> None:
        tally, rule = self.tally, self.tally.spec.rule
        k = int(rule.value) if rule.kind == "repeat" else 1
        for record in self.records(tally.spec.name, None, check=True, encode_fixed=True):
            code = self.count(record)
            if code == INVALID:
                continue
            if record.fixed is not None:
                self.writer.write(record.fixed, k)
            else:
                self.writer.write(record.raw if record.raw is not None else encode(record.row), k)
            tally.rows_out += k
        tally.wanted = rule.wanted(tally.valid)


@dataclass(slots=True)
class SFTSummary:
    """What a prepare-sft run did; `table()` is the CLI's report, `manifest` what was written."""

    sources: list[SourceTally]
    manifest: dict
    out_dir: Path

    def table(self) -> str:
        total = sum(t.rows_out for t in self.sources)
        asked = _requested_shares(self.sources)
        head = f"{'source':<22} {'rule':<14} {'rows in':>11} {'invalid':>9} {'valid':>11} {'rows out':>11}"
        lines = [head + f" {'share %':>8} {'asked %':>8} {'paper rows':>11}"]
        for t, want in zip(self.sources, asked):
            share = 100.0 * t.rows_out / total if total else 0.0
            paper = f"{t.spec.rows:>11}" if t.spec.rows is not None else f"{'-':>11}"
            flag = "  (!)" if t.spec.rows is not None and t.spec.rows != t.rows_out else ""
            lines.append(
                f"{t.spec.name:<22} {str(t.spec.rule):<14} {t.rows_in:>11} {sum(t.invalid.values()):>9} "
                f"{t.valid:>11} {t.rows_out:>11} {share:>8.2f} {want:>8.2f} {paper}{flag}"
            )
        lines.append(f"{'total':<22} {'':<14} {sum(t.rows_in for t in self.sources):>11} {'':>9} {'':>11} {total:>11}")
        for t in self.sources:
            if t.invalid:
                reasons = ", ".join(f"{r}={n}" for r, n in sorted(t.invalid.items()))
                lines.append(f"{t.spec.name}: dropped {reasons}")
            if t.placeholder_user:
                lines.append(
                    f"{t.spec.name}: {t.placeholder_user} valid rows have a '-' placeholder user turn "
                    "(the problem statement lives in an external dataset; see docs/data.md)"
                )
        return "\n".join(lines)


def _requested_shares(tallies: Sequence[SourceTally]) -> list[float]:
    """Percent shares asked for: the specs' `share` when every source has one, else the rules' targets."""
    if tallies and all(t.spec.share is not None for t in tallies):
        return [float(t.spec.share) for t in tallies]
    total = sum(t.wanted for t in tallies)
    return [100.0 * t.wanted / total if total else 0.0 for t in tallies]


def _output_format(fmt: str | None) -> str:
    if fmt is None:
        if have_pyarrow():
            return "parquet"
        logger.warning("pyarrow is not installed: writing jsonl shards (pip install pyarrow for parquet)")
        return "jsonl"
    if fmt == "parquet" and not have_pyarrow():
        raise ConfigError("--format parquet needs pyarrow: pip install pyarrow (or use --format jsonl)")
    return fmt


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file())):
        raise ConfigError(f"--out {out_dir}: exists and is not a prepare-sft blend; give an empty or new directory")


def _commit(work: Path, out_dir: Path) -> None:
    """Move the finished work directory to `out_dir`, replacing a previous blend there."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out_dir, old)
    os.replace(work, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _manifest(tallies: Sequence[SourceTally], options: SFTOptions, fmt: str) -> dict:
    import hashlib

    total = sum(t.rows_out for t in tallies)
    asked = _requested_shares(tallies)
    sources = []
    for t, want in zip(tallies, asked):
        sources.append(
            {
                "name": t.spec.name,
                "rule": str(t.spec.rule),
                "files": t.files,
                "rows_in": t.rows_in,
                "invalid": dict(sorted(t.invalid.items())),
                "valid": t.valid,
                "clean": t.clean,
                "fixed": t.fixed,
                "placeholder_user": t.placeholder_user,
                "wanted": t.wanted,
                "rows_out": t.rows_out,
                "share": round(100.0 * t.rows_out / total, 4) if total else 0.0,
                "share_requested": round(want, 4),
                "rows_expected": t.spec.rows,
                "shards": t.shards,
            }
        )
    digest = hashlib.sha256()
    for source in sources:
        for shard in source["shards"]:
            digest.update(f"{source['name']}/{shard['file']}:{shard['rows']}:{shard['sha256']}\n".encode())
    return {
        "kind": MANIFEST_KIND,
        "version": MANIFEST_VERSION,
        "created_by": f"m2rl_slime {__version__}",
        "seed": options.seed,
        "format": fmt,
        "shard_rows": options.shard_rows,
        "row_group_rows": options.row_group_rows,
        "limit": options.limit,
        "total_rows": total,
        "blend_sha256": digest.hexdigest(),
        "sources": sources,
    }


def prepare_sft(sources: Sequence[SourceSpec], out_dir: str | Path, options: SFTOptions | None = None) -> SFTSummary:
    """Build the blend of `sources` in `out_dir` (all or nothing).

    Args:
        sources: The sources with their rules (`SourceSpec.parse` / `sft_rules.load_blend`).
        out_dir: Output directory: new, empty, or a previous blend (replaced on success).
        options: Seed, output format and sharding, limit, strictness, progress bar, path root.

    Returns:
        The run's `SFTSummary`; `out_dir/manifest.json` holds the same counts.

    Raises:
        ConfigError: a missing input, a bad rule, a blend with no rows, or (strict) a bad row; `out_dir`
            is then left as it was.
    """
    options = options or SFTOptions()
    if options.shard_rows < 1 or options.row_group_rows < 1 or options.workers < 1:
        raise ConfigError("--shard-rows, --row-group-rows and --workers must be >= 1")
    check_sources(sources)
    fmt = _output_format(options.fmt)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    inputs = [resolve_files(spec, options.root) for spec in sources]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    pool = _pool(options.workers) if any(p.suffix == ".jsonl" for files in inputs for p in files) else None
    try:
        tallies = [_run_source(spec, files, work, fmt, options, pool) for spec, files in zip(sources, inputs)]
        if sum(t.rows_out for t in tallies) == 0:
            raise ConfigError("the blend has no rows: every input row was invalid (see the warnings)")
        manifest = _manifest(tallies, options, fmt)
        with open(work / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        _commit(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return SFTSummary(tallies, manifest, out_dir)


def _pool(workers: int) -> Any:
    """A process pool for the jsonl checks (None for one worker). Spawned, not forked: the writer threads
    and the caller's state stay out of the workers, which only import `sft_scan`."""
    if workers == 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _run_source(
    spec: SourceSpec, files: list[Path], work: Path, fmt: str, options: SFTOptions, pool: Any
) -> SourceTally:
    tally = SourceTally(spec, files=[{"path": str(p), "bytes": p.stat().st_size} for p in files])
    writer = ShardWriter(work / spec.name, fmt, options.shard_rows, options.row_group_rows)
    source = _Source(tally, files, writer, options, pool)
    try:
        if spec.rule.needs_count:
            source.write_pass(source.count_pass(), options.seed)
        else:
            source.single_pass()
        tally.shards = writer.close()
    except BaseException:
        writer.abort()
        raise
    if tally.valid == 0:
        logger.warning("source %s: no valid row in %d input rows", spec.name, tally.rows_in)
    logger.info("source %s: %d rows out of %d valid (%s)", spec.name, tally.rows_out, tally.valid, spec.rule)
    return tally
