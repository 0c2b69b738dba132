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
from .files import _import_parquet
from .sft_rows import CLEAN, SFTRowError, check_row, has_placeholder_turn
from .sft_rules import SourceSpec, check_sources, copies, resolve_files, selection_rng
from .sft_shards import MANIFEST, MANIFEST_KIND, MANIFEST_VERSION, ShardWriter, have_pyarrow

logger = logging.getLogger(__name__)

INVALID = 0
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

    def __init__(self, tally: SourceTally, files: list[Path], writer: ShardWriter, options: SFTOptions):
        self.tally, self.files, self.writer, self.options = tally, files, writer, options
        self.examples: Counter = Counter()

    def rows(self, desc: str, total: int | None, parse: bool = True) -> Iterator[tuple[str, bytes | None, Any]]:
        """(where, raw jsonl line or None, row) for every input row up to the limit (see `_file_rows`)."""
        from tqdm import tqdm

        disable = None if self.options.progress is None else not self.options.progress
        seen = 0
        with tqdm(total=total, unit="rows", desc=desc, disable=disable, unit_scale=True) as bar:
            for file in self.files:
                for where, raw, row in _file_rows(file, parse):
                    if self.options.limit is not None and seen >= self.options.limit:
                        return
                    seen += 1
                    bar.update(1)
                    yield where, raw, row

    def classify(self, where: str, row: Any) -> tuple[int, dict | None]:
        """(code, fixed row or None); counts invalid rows by reason (raises in strict mode)."""
        try:
            if isinstance(row, SFTRowError):
                raise row
            code, checked = check_row(row)
        except SFTRowError as exc:
            if self.options.strict:
                raise ConfigError(f"{where}: {exc.reason}: {exc}") from None
            self.tally.invalid[exc.reason] += 1
            self.examples[exc.reason] += 1
            if self.examples[exc.reason] <= _EXAMPLES_PER_REASON:
                logger.warning("dropped (%s) %s: %s", exc.reason, where, exc)
            return INVALID, None
        return code, checked

    def count_pass(self) -> bytearray:
        codes = bytearray()
        for where, _, row in self.rows(f"{self.tally.spec.name} (count)", None):
            self.tally.rows_in += 1
            code, checked = self.classify(where, row)
            codes.append(code)
            self._count_valid(code, checked)
        return codes

    def _count_valid(self, code: int, checked: dict | None) -> None:
        if code == INVALID:
            return
        if code == CLEAN:
            self.tally.clean += 1
        else:
            self.tally.fixed += 1
        self.tally.placeholder_user += has_placeholder_turn(checked)

    def write_pass(self, codes: bytearray, seed: int) -> None:
        tally = self.tally
        tally.wanted = tally.spec.rule.wanted(tally.valid)
        plan = copies(tally.valid, tally.wanted, selection_rng(seed, tally.spec.name))
        for i, (_, raw, row) in enumerate(self.rows(f"{tally.spec.name} (write)", tally.rows_in, parse=False)):
            if codes[i] == INVALID:
                continue
            n = next(plan)
            if n == 0:
                continue
            if codes[i] == CLEAN and raw is not None:
                self.writer.write(raw, n)
            else:
                if row is None:  # a jsonl row that needed a fix: parse it again
                    row = json.loads(raw)
                self.writer.write(_encode(check_row(row)[1]), n)
            tally.rows_out += n

    def single_pass(self) -> None:
        tally, k = self.tally, int(self.tally.spec.rule.value) if self.tally.spec.rule.kind == "repeat" else 1
        for where, raw, row in self.rows(tally.spec.name, None):
            tally.rows_in += 1
            code, checked = self.classify(where, row)
            if code == INVALID:
                continue
            self._count_valid(code, checked)
            self.writer.write(raw if code == CLEAN and raw is not None else _encode(checked), k)
            tally.rows_out += k
        tally.wanted = tally.spec.rule.wanted(tally.valid)


def _encode(row: dict) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def _file_rows(path: Path, parse: bool) -> Iterator[tuple[str, bytes | None, Any]]:
    """Rows of one input file as (file:row, raw, row).

    jsonl: `raw` is the line without its newline; `row` is the parsed object (an `SFTRowError` for a line
    that is not JSON), or None when `parse` is False. parquet: `raw` is None and `row` the row's object.
    """
    if path.suffix == ".parquet":
        pq = _import_parquet()
        row_no = 0
        for batch in pq.ParquetFile(path).iter_batches():
            for row in batch.to_pylist():
                row_no += 1
                yield f"{path}:{row_no}", None, row
        return
    with open(path, "rb") as f:
        for line_no, line in enumerate(f, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            if not parse:
                yield f"{path}:{line_no}", raw, None
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                row = SFTRowError("invalid_json", f"invalid JSON ({exc})")
            yield f"{path}:{line_no}", raw, row


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
    if options.shard_rows < 1 or options.row_group_rows < 1:
        raise ConfigError("--shard-rows and --row-group-rows must be >= 1")
    check_sources(sources)
    fmt = _output_format(options.fmt)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    inputs = [resolve_files(spec, options.root) for spec in sources]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    try:
        tallies = [_run_source(spec, files, work, fmt, options) for spec, files in zip(sources, inputs)]
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
    return SFTSummary(tallies, manifest, out_dir)


def _run_source(spec: SourceSpec, files: list[Path], work: Path, fmt: str, options: SFTOptions) -> SourceTally:
    tally = SourceTally(spec, files=[{"path": str(p), "bytes": p.stat().st_size} for p in files])
    writer = ShardWriter(work / spec.name, fmt, options.shard_rows, options.row_group_rows)
    source = _Source(tally, files, writer, options)
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
