"""`prepare-sft`: SFT sources (jsonl/parquet, any size) -> one sharded, validated, exactly counted blend.

Not a slime hook; its output is read by `m2rl_slime.data.SFTDataSource`. Memory stays bounded: rows
are streamed, never collected. A source whose rule needs its valid-row count (``sample=N``,
``fraction=F``) is read twice: a counting pass that validates every row and keeps one byte per input row
(invalid / valid as is / valid after a fix) plus the byte span of each ~4 MB chunk it read, then a writing
pass that draws the rows (`sft_rules.copies`) and copies each chosen valid line byte for byte: it reads
those spans again and only finds the line ends (no parse), and consecutive chosen lines go to the writer
as one slice. Only fixed rows are parsed again and re-encoded. ``all``/``repeat=K`` sources are written in
their single pass.

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
from itertools import repeat
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .sft_fill import FILL_FORMATS, FillSource, Reference
from .sft_fill_index import FillIndex
from .sft_report import SFTSummary, SourceTally, manifest_of
from .sft_rows import CLEAN, check_row
from .sft_rules import SourceSpec, check_sources, copies, resolve_files, selection_rng
from .sft_scan import (
    INVALID,
    Chunk,
    Record,
    encode,
    fill_lines,
    filled,
    in_order,
    jsonl_chunks,
    parquet_records,
    raw_line,
    read_span,
    row_bounds,
)
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
        self._seen = 0  # input rows taken in the current pass (the limit)
        self.spans: list[list[tuple[int, int, int]]] = []  # per jsonl file counted: (start, end, rows) spans

    def _bar(self, desc: str, total: int | None) -> Any:
        from tqdm import tqdm

        disable = None if self.options.progress is None else not self.options.progress
        return tqdm(total=total, unit="rows", desc=desc, disable=disable, unit_scale=True)

    def _room(self, n: int) -> int:
        """How many of the next `n` input rows the limit (input rows read per source) still takes."""
        limit = self.options.limit
        return n if limit is None else max(0, min(n, limit - self._seen))

    def _parquet(self, file: Path, check: bool, encode_fixed: bool, bar: Any) -> Iterator[Record]:
        for record in parquet_records(file, check, encode_fixed):
            if self._room(1) == 0:
                return
            self._seen += 1
            bar.update(1)
            yield record

    def _jsonl(self, file: Path, encode_fixed: bool, bar: Any, with_data: bool) -> Iterator[tuple]:
        """``(data, codes, chunk, rows)`` of each span of a jsonl file up to the limit, its rows tallied;
        `codes` the final code of each of its `rows` rows taken (`count`). The spans are kept (`spans`) for
        the write pass."""
        line_base, kept = 1, []
        self.spans.append(kept)
        ahead = 2 * self.options.workers
        for chunk, data in jsonl_chunks(file, self.pool, encode_fixed, ahead, with_data):
            n = self._room(len(chunk.codes))
            if n == 0 and chunk.codes:
                return
            self._seen += n
            bar.update(n)
            codes = self._count_chunk(file, chunk, n, line_base)
            kept.append((chunk.start, chunk.end, n))
            line_base += chunk.lines
            yield data, codes, chunk, n

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
        self.tally.rows_in += 1
        if record.code == CLEAN and record.ref is None:
            self.tally.clean += 1
            return CLEAN
        return self._classify(record)

    def _count_chunk(self, file: Path, chunk: Chunk, n: int, line_base: int) -> bytes | bytearray:
        """`count` of the first `n` rows of a span (its rows not in `chunk.special` are plainly clean)."""
        tally = self.tally
        tally.rows_in += n
        codes = chunk.codes if n == len(chunk.codes) else chunk.codes[:n]
        if not chunk.special:
            tally.clean += n
            return codes
        codes, plain = bytearray(codes), n
        for k, (line, code, fixed, error, ref) in chunk.special.items():
            if k >= n:
                break
            plain -= 1
            codes[k] = self._classify(Record(f"{file}:{line_base + line}", None, code, fixed, error, ref))
        tally.clean += plain
        return codes

    def _classify(self, record: Record) -> int:
        """The code of a row that is not plainly clean, tallied (`rows_in` aside)."""
        tally = self.tally
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
        """Validate and tally every row; one code per input row."""
        codes, self._seen = bytearray(), 0
        with self._bar(f"{self.tally.spec.name} (count)", None) as bar:
            for file in self.files:
                if self._room(1) == 0:
                    break
                if file.suffix == ".parquet":
                    codes.extend(self.count(record) for record in self._parquet(file, True, False, bar))
                    continue
                for _, span_codes, _, _ in self._jsonl(file, False, bar, with_data=False):
                    codes += span_codes
        return codes

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

    def _spans_to_write(self, file: Path, kept: list, codes: bytearray, row: int) -> Iterator[tuple]:
        """``(data, filled, rows)`` of each span the counting pass kept for `file` (its first row is row `row`);
        `filled` the encodings of its placeholder rows whose problem was found, by row (parsed, filled and
        encoded in the worker processes, `ahead` spans ahead, or here without a pool)."""

        def jobs() -> Iterator[tuple]:
            first = row
            for start, end, n in kept:
                data, keys, lines, questions = read_span(file, start, end), [], [], []
                k = codes.find(PLACEHOLDER, first, first + n) if self.index is not None else -1
                if k >= 0:
                    starts, ends, _, _ = row_bounds(data)
                    while k >= 0:
                        question = self._next_question()
                        if question is not None:
                            keys.append(k - first)
                            lines.append(raw_line(data, starts[k - first], ends[k - first]))
                            questions.append(question)
                        k = codes.find(PLACEHOLDER, k + 1, first + n)
                yield (data, keys, n), (fill_lines if keys else None), (lines, questions)
                first += n

        for (data, keys, n), encodings in in_order(self.pool, jobs(), 2 * self.options.workers):
            yield data, dict(zip(keys, encodings or ())), n

    def _write_span(self, data: bytes, codes: Any, row: int, n: int, plan: Iterator[int], encoded: dict) -> None:
        """Write the chosen rows of the first `n` rows of span `data` (row k has code ``codes[row + k]``).
        `encoded` holds rows written re-encoded (fixed, or filled placeholders; one missing is unresolved).
        Valid rows written once and next to each other in the input are handed over as one slice."""
        starts, ends, _, _ = row_bounds(data)
        writer, view, out = self.writer, memoryview(data), 0
        open_end = len(data) if data[-1:] != b"\n" else -1  # a last line without its newline ends there
        run_start, run_end, run = -1, -1, []
        for k in range(n):
            code = codes[row + k]
            if code == INVALID or (code == PLACEHOLDER and k not in encoded):
                continue
            copies = next(plan)
            if copies == 0:
                continue
            out += copies
            start, end = starts[k], ends[k]
            if code == CLEAN and end != open_end:
                if copies == 1:
                    if start != run_end:
                        if run:
                            writer.write_rows(view[run_start:run_end], run)
                        run_start, run = start, []
                    run.append(end - run_start)
                    run_end = end
                    continue
                line = view[start:end]
            else:
                line = encoded.get(k)
                if line is None:
                    line = raw_line(data, start, end)
                    if code != CLEAN:  # fixed in the counting pass: check it again
                        line = encode(check_row(json.loads(line))[1])
            if run:
                writer.write_rows(view[run_start:run_end], run)
                run_end, run = -1, []
            writer.write(line, copies)
        if run:
            writer.write_rows(view[run_start:run_end], run)
        self.tally.rows_out += out

    def write_pass(self, codes: bytearray, seed: int) -> None:
        tally = self.tally
        tally.wanted = tally.spec.rule.wanted(tally.valid)
        plan = copies(tally.valid, tally.wanted, selection_rng(seed, tally.spec.name))
        row, spans = 0, iter(self.spans)
        with self._bar(f"{tally.spec.name} (write)", tally.rows_in) as bar:
            for file in self.files:
                if row >= len(codes):
                    break
                if file.suffix == ".parquet":
                    for record in parquet_records(file, False, False):
                        if row >= len(codes):
                            break
                        self._write_record(codes[row], record, plan)
                        row += 1
                        bar.update(1)
                    continue
                for data, encoded, n in self._spans_to_write(file, next(spans), codes, row):
                    self._write_span(data, codes, row, n, plan, encoded)
                    row += n
                    bar.update(n)

    def _write_record(self, code: int, record: Record, plan: Iterator[int]) -> None:
        """Write a parquet row of the write pass (parsed again, checked again, encoded)."""
        if code == INVALID:
            return
        row = record.row
        if code == PLACEHOLDER:
            question = self._next_question()
            if question is None:
                return
            encoded = filled(row, question)
        else:
            encoded = None
        n = next(plan)
        if n == 0:
            return
        self.writer.write(encoded if encoded is not None else encode(check_row(row)[1]), n)
        self.tally.rows_out += n

    def single_pass(self) -> None:
        tally, rule = self.tally, self.tally.spec.rule
        each = int(rule.value) if rule.kind == "repeat" else 1
        self._seen = 0
        with self._bar(tally.spec.name, None) as bar:
            for file in self.files:
                if self._room(1) == 0:
                    break
                if file.suffix == ".parquet":
                    for record in self._parquet(file, True, True, bar):
                        if self.count(record) == INVALID:
                            continue
                        self.writer.write(record.fixed if record.fixed is not None else encode(record.row), each)
                        tally.rows_out += each
                    continue
                for data, codes, chunk, n in self._jsonl(file, True, bar, with_data=True):
                    fixed = {k: entry[2] for k, entry in chunk.special.items() if entry[2] is not None}
                    self._write_span(data, codes, 0, n, repeat(each), fixed)
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
