"""`prepare-sft`: SFT sources (jsonl/parquet, any size) -> one sharded, validated, exactly counted blend.

Not a slime hook; its output is read by `m2rl_slime.data.SFTDataSource`. Memory stays bounded: rows
are streamed, never collected. A source whose rule needs its valid-row count (``sample=N``,
``fraction=F``) is read twice: a counting pass that validates every row and keeps one byte per input row
(invalid / valid as is / valid after a fix), then a writing pass that draws the rows (`sft_rules.copies`)
and copies each chosen valid line byte for byte (only fixed rows are parsed again and re-encoded).
``all``/``repeat=K`` sources are written in their single pass.

Placeholder rows (a ``-`` user turn, see `sft_fill`) are never written with the ``-``. With fill sources
(``--fill-source``), every source takes the two passes: the counting pass collects the problems the
placeholder rows reference, `sft_fill_index.FillIndex` reads the statements of just those problems, and the
writing pass fills the rows (parsed, filled and encoded in the worker processes) or drops those whose problem
was not found (``unresolved_placeholder:<set>``). Without fill sources they are dropped under the same reason.

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
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .sft_fill import FILL_FORMATS, FillSource, Reference
from .sft_fill_index import FillIndex
from .sft_report import SFTSummary, SourceTally, manifest_of
from .sft_rows import CLEAN, check_row
from .sft_rules import SourceSpec, check_sources, copies, resolve_files, selection_rng
from .sft_scan import INVALID, Record, encode, filled, jsonl_filled_records, jsonl_records, parquet_records
from .sft_shards import MANIFEST, ShardWriter, have_pyarrow

logger = logging.getLogger(__name__)

_EXAMPLES_PER_REASON = 3
PLACEHOLDER = 3  # code of a valid row with a '-' user turn, filled in the write pass when its problem is found


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
    fill: tuple[FillSource, ...] = ()  # where '-' placeholder user turns are filled from (none: such rows drop)


class _Source:
    """Reads, validates and writes one source (state of one source's passes).

    With fill sources (`index`), the counting pass keeps the reference of every placeholder row (`row_refs`, an
    id into `refs`: 4 bytes a row); `resolve` looks the referenced problems up, and the write pass fills the
    rows whose problem was found and skips the others.
    """

    def __init__(
        self, tally: SourceTally, files: list[Path], writer: ShardWriter, options: SFTOptions, pool: Any, index: Any
    ):
        self.tally, self.files, self.writer, self.options, self.pool = tally, files, writer, options, pool
        self.index: FillIndex | None = index
        self.examples: Counter = Counter()
        self.refs: list[Reference] = []
        self._ref_ids: dict[Reference, int] = {}
        self.row_refs = array("i")
        self._cursor = 0

    def records(
        self, desc: str, total: int | None, check: bool, encode_fixed: bool = False, codes: bytearray | None = None
    ) -> Iterator[Record]:
        """Every input row up to the limit, checked (and fixed rows re-encoded) or not, behind a progress bar.
        With `codes` (the write pass of a source with fill sources) jsonl placeholder rows come back filled."""
        from tqdm import tqdm

        disable = None if self.options.progress is None else not self.options.progress
        seen, ahead = 0, 2 * self.options.workers
        with tqdm(total=total, unit="rows", desc=desc, disable=disable, unit_scale=True) as bar:
            for file in self.files:
                if file.suffix == ".parquet":
                    rows = parquet_records(file, check, encode_fixed)
                elif codes is not None and self.index is not None:
                    rows = jsonl_filled_records(file, self.pool, self._fills(codes, seen), ahead)
                else:
                    rows = jsonl_records(file, self.pool, check, encode_fixed, ahead)
                for record in rows:
                    if self.options.limit is not None and seen >= self.options.limit:
                        return
                    seen += 1
                    bar.update(1)
                    yield record

    def _drop(self, where: str, reason: str, message: str) -> int:
        if self.options.strict:
            raise ConfigError(f"{where}: {reason}: {message}")
        self.tally.invalid[reason] += 1
        self.examples[reason] += 1
        if self.examples[reason] <= _EXAMPLES_PER_REASON:
            logger.warning("dropped (%s) %s: %s", reason, where, message)
        return INVALID

    def count(self, record: Record) -> int:
        """Tally one checked row; returns its code (raises on a bad row in strict mode)."""
        tally = self.tally
        tally.rows_in += 1
        if record.error is not None:
            return self._drop(record.where, *record.error)
        if record.ref is not None:
            tally.placeholder_user += 1
            if self.index is None:
                name = record.ref.source if record.ref.source in FILL_FORMATS else "NAME"
                message = f"the user turn is the '-' placeholder of {record.ref}; --fill-source {name}=PATH fills it"
                return self._drop(record.where, record.ref.reason, message)
            ref_id = self._ref_ids.setdefault(record.ref, len(self.refs))
            if ref_id == len(self.refs):
                self.refs.append(record.ref)
            self.row_refs.append(ref_id)
            return PLACEHOLDER
        if record.code == CLEAN:
            tally.clean += 1
        else:
            tally.fixed += 1
        return record.code

    def count_pass(self) -> bytearray:
        return bytearray(self.count(r) for r in self.records(f"{self.tally.spec.name} (count)", None, check=True))

    def resolve(self) -> None:
        """Look up the referenced problems; a placeholder row becomes fixed (filled) or invalid (unresolved)."""
        index, tally = self.index, self.tally
        index.resolve(self.refs)
        unresolved = []
        for ref_id, n in sorted(Counter(self.row_refs).items()):
            ref = self.refs[ref_id]
            found = index.question(ref) is not None
            index.rows[(ref.source, "filled" if found else "unresolved")] += n
            if found:
                tally.fixed += n
                tally.filled[ref.source] += n
            else:
                tally.invalid[ref.reason] += n
                unresolved.append((ref, n))
        if unresolved and self.options.strict:
            ref = unresolved[0][0]
            raise ConfigError(
                f"source {tally.spec.name}: {sum(n for _, n in unresolved)} rows reference problems that cannot be "
                f"found, e.g. {ref.reason}: {ref}: {index.why(ref)}"
            )
        for ref, n in unresolved:
            self.examples[ref.reason] += 1
            if self.examples[ref.reason] <= _EXAMPLES_PER_REASON:
                logger.warning("dropped (%s) %d rows of %s: %s", ref.reason, n, ref, index.why(ref))

    def _next_question(self) -> str | None:
        ref = self.refs[self.row_refs[self._cursor]]
        self._cursor += 1
        return self.index.question(ref)

    def _fills(self, codes: bytearray, start: int) -> Any:
        """``fills(n)`` of `sft_scan.jsonl_filled_records` for a file whose first row is row `start`."""
        row = start

        def fills(n: int) -> dict[int, str]:
            nonlocal row
            found = {}
            for k in range(n):
                if row + k < len(codes) and codes[row + k] == PLACEHOLDER:
                    question = self._next_question()
                    if question is not None:
                        found[k] = question
            row += n
            return found

        return fills

    def _filled(self, record: Record) -> bytes | None:
        """The filled encoding of a placeholder row, None when its problem was not found."""
        if record.raw is not None:
            return record.fixed
        question = self._next_question()
        return None if question is None else filled(record.row, question)

    def write_pass(self, codes: bytearray, seed: int) -> None:
        tally = self.tally
        tally.wanted = tally.spec.rule.wanted(tally.valid)
        plan = copies(tally.valid, tally.wanted, selection_rng(seed, tally.spec.name))
        for i, record in enumerate(self.records(f"{tally.spec.name} (write)", tally.rows_in, False, codes=codes)):
            code, encoded = codes[i], None
            if code == INVALID:
                continue
            if code == PLACEHOLDER:
                encoded = self._filled(record)
                if encoded is None:
                    continue
            n = next(plan)
            if n == 0:
                continue
            if encoded is None and code == CLEAN and record.raw is not None:
                encoded = record.raw
            elif encoded is None:  # a parquet row, or a jsonl row that needed a fix: check it again
                row = record.row if record.raw is None else json.loads(record.raw)
                encoded = encode(check_row(row)[1])
            self.writer.write(encoded, n)
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


def prepare_sft(sources: Sequence[SourceSpec], out_dir: str | Path, options: SFTOptions | None = None) -> SFTSummary:
    """Build the blend of `sources` in `out_dir` (all or nothing).

    Args:
        sources: The sources with their rules (`SourceSpec.parse` / `sft_rules.load_blend`).
        out_dir: Output directory: new, empty, or a previous blend (replaced on success).
        options: Seed, output format and sharding, limit, strictness, progress bar, path root, fill sources.

    Returns:
        The run's `SFTSummary`; `out_dir/manifest.json` holds the same counts.

    Raises:
        ConfigError: a missing input or fill source, a bad rule, a blend with no rows, or (strict) a bad or
            unresolvable row; `out_dir` is then left as it was.
    """
    options = options or SFTOptions()
    if options.shard_rows < 1 or options.row_group_rows < 1 or options.workers < 1:
        raise ConfigError("--shard-rows, --row-group-rows and --workers must be >= 1")
    check_sources(sources)
    fmt = _output_format(options.fmt)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    inputs = [resolve_files(spec, options.root) for spec in sources]
    index = FillIndex(options.fill, options.root) if options.fill else None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    pool = _pool(options.workers) if any(p.suffix == ".jsonl" for files in inputs for p in files) else None
    try:
        tallies = [_run_source(spec, files, work, fmt, options, pool, index) for spec, files in zip(sources, inputs)]
        if sum(t.rows_out for t in tallies) == 0:
            raise ConfigError("the blend has no rows: every input row was invalid (see the warnings)")
        manifest = manifest_of(tallies, options, fmt, index.report() if index is not None else None)
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
    spec: SourceSpec, files: list[Path], work: Path, fmt: str, options: SFTOptions, pool: Any, index: Any
) -> SourceTally:
    tally = SourceTally(spec, files=[{"path": str(p), "bytes": p.stat().st_size} for p in files])
    writer = ShardWriter(work / spec.name, fmt, options.shard_rows, options.row_group_rows)
    source = _Source(tally, files, writer, options, pool, index)
    try:
        if spec.rule.needs_count or index is not None:
            codes = source.count_pass()
            if index is not None:
                source.resolve()
            source.write_pass(codes, options.seed)
        else:
            source.single_pass()
        tally.shards = writer.close()
    except BaseException:
        writer.abort()
        raise
    if tally.valid == 0:
        logger.warning("source %s: no valid row in %d input rows", spec.name, tally.rows_in)
    if index is None and tally.unresolved:
        hint = " ".join(f"--fill-source {name}=PATH" for name in FILL_FORMATS)
        logger.warning(
            "source %s: dropped %d rows whose user turn is the '-' placeholder; %s fills them",
            spec.name,
            tally.unresolved,
            hint,
        )
    logger.info("source %s: %d rows out of %d valid (%s)", spec.name, tally.rows_out, tally.valid, spec.rule)
    return tally
