"""Looking up the problems that placeholder rows reference in local downloads of TACO, APPS, CodeContests and
Codeforces (part of ``prepare-sft``; not a slime hook).

Memory is bounded by construction: `FillIndex.resolve` is given the references collected by the counting pass
and keeps only the statement text of those problems (a dict, ~35k statements for the whole release). The
source files are streamed and only the columns of `sft_fill.FillFormat.columns` are decoded: a parquet file is
read one row group at a time, and only the row groups that hold a referenced position; an ``.arrow`` file (the
``datasets`` on-disk format of TACO's ``train/`` folder) is memory-mapped a record batch at a time; a jsonl
file is split into lines and only the referenced lines are parsed. Test cases and solutions are never held.

Split files. A `FillSource` path is a file, a folder or a glob. Unless the source names its split
(``NAME:SPLIT=PATH``), a file belongs to split S when a folder of its path below the given one, or the leading
word of its name, is S (``valid``, ``validation``, ``val`` and ``dev`` are one split). When one split exists in
several folders (TACO ships ``train/*.arrow``, which its loading script reads and the paper therefore used,
and ``ALL/train-*.parquet``), the arrow folder is used, then parquet, then jsonl; two folders of the same
format are an error that names them. The
files of a split are read in name order, which is the order ``datasets.load_dataset`` gives the positions.
"""

from __future__ import annotations

import bisect
import glob
import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .files import _import_parquet
from .sft_fill import FILL_FORMATS, FILL_SUFFIXES, FillFormat, FillSource, Reference
from .sft_scan import raw_line, read_span, row_bounds, spans

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z]+")
_SYNONYMS = {"validation": "valid", "val": "valid", "dev": "valid"}
Key = tuple[str, str, int]  # (source, split, index) of a resolvable reference


def _split_name(word: str) -> str:
    word = word.lower()
    return _SYNONYMS.get(word, word)


def _source_files(source: FillSource, root: Path | None) -> list[tuple[Path, Path]]:
    """``(base, file)`` of every .parquet/.arrow/.jsonl file of a fill source (`base`: the path it was found in)."""
    found: list[tuple[Path, Path]] = []
    hub = FILL_FORMATS[source.name].hub
    for raw in source.paths:
        path = Path(raw) if root is None or os.path.isabs(raw) else root / raw
        if path.is_dir():
            files = [(path, p) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in FILL_SUFFIXES]
        elif path.is_file():
            files = [(path.parent, path)] if path.suffix in FILL_SUFFIXES else []
        else:
            files = [(Path(p).parent, Path(p)) for p in sorted(glob.glob(str(path), recursive=True))]
            files = [(b, p) for b, p in files if p.is_file() and p.suffix in FILL_SUFFIXES]
        if not files:
            raise ConfigError(
                f"fill source {source.name}: {path} matches no .arrow/.parquet/.jsonl file (download it: hf download "
                f"{hub} --repo-type dataset --local-dir {root / hub if root else hub}; or give --fill-source "
                f"{source.name}=PATH, or --no-fill)"
            )
        found.extend(files)
    return found


def _splits_of(base: Path, file: Path) -> set[str]:
    rel = file.relative_to(base)
    words = {_split_name(part) for part in (base.name, *rel.parts[:-1])}
    match = _WORD.match(file.name)
    if match:
        words.add(_split_name(match.group(0)))
    return words


def _pick_folder(name: str, split: str, files: list[Path]) -> list[Path]:
    """The files of one split, from one folder and one format (see the module docstring)."""
    for suffix in FILL_SUFFIXES:
        chosen = [f for f in files if f.suffix == suffix]
        folders = sorted({str(f.parent) for f in chosen})
        if len(folders) > 1:
            raise ConfigError(
                f"fill source {name}: split {split!r} is in several folders ({', '.join(folders)}); "
                f"point --fill-source {name}=PATH at one of them"
            )
        if chosen:
            return sorted(chosen, key=lambda f: f.name)
    return []


def _columns(fmt: FillFormat, names: Sequence[str], file: Path) -> list[str]:
    if fmt.columns[0] not in names:
        raise ConfigError(
            f"fill source {fmt.name}: {file} has no column {fmt.columns[0]!r} (is it a {fmt.hub} file?); "
            f"its columns: {', '.join(names[:12])}"
        )
    return [c for c in fmt.columns if c in names]


def _wanted(positions: Sequence[int], start: int, stop: int) -> list[int]:
    """The sorted `positions` in [start, stop)."""
    return list(positions[bisect.bisect_left(positions, start) : bisect.bisect_left(positions, stop)])


def _parquet_rows(fmt: FillFormat, file: Path, positions: Sequence[int], base: int) -> Iterator[tuple[int, dict]]:
    pf = _import_parquet().ParquetFile(file)
    columns = _columns(fmt, pf.schema_arrow.names, file)
    start = base
    for group in range(pf.metadata.num_row_groups):
        rows = pf.metadata.row_group(group).num_rows
        wanted = _wanted(positions, start, start + rows)
        if wanted:
            table = pf.read_row_group(group, columns=columns)
            for pos in wanted:
                yield pos, {c: table.column(c)[pos - start].as_py() for c in columns}
        start += rows
    yield -1, {"rows": start - base}


def _arrow_batches(file: Path) -> Iterator[Any]:
    import pyarrow as pa

    with pa.memory_map(str(file)) as source:
        try:
            reader = pa.ipc.open_stream(source)
            yield from reader
        except pa.ArrowInvalid:  # the random-access file format instead of the stream format
            source.seek(0)
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)


def _arrow_rows(fmt: FillFormat, file: Path, positions: Sequence[int], base: int) -> Iterator[tuple[int, dict]]:
    start, columns = base, None
    for batch in _arrow_batches(file):
        if columns is None:
            columns = _columns(fmt, batch.schema.names, file)
        wanted = _wanted(positions, start, start + batch.num_rows)
        for pos in wanted:
            yield pos, {c: batch.column(c)[pos - start].as_py() for c in columns}
        start += batch.num_rows
    yield -1, {"rows": start - base}


def _jsonl_rows(fmt: FillFormat, file: Path, positions: Sequence[int], base: int) -> Iterator[tuple[int, dict]]:
    pos = base
    for start, end in spans(file):  # the rows as prepare-sft finds them (`sft_scan.row_bounds`)
        data = read_span(file, start, end)
        starts, ends, _, _ = row_bounds(data)
        for offset in _wanted(positions, pos, pos + len(starts)):
            k = offset - pos
            try:
                row = json.loads(raw_line(data, starts[k], ends[k]))
            except (json.JSONDecodeError, UnicodeDecodeError):
                row = None
            yield offset, ({c: row.get(c) for c in fmt.columns} if isinstance(row, dict) else {})
        pos += len(starts)
    yield -1, {"rows": pos - base}


_READERS = {".parquet": _parquet_rows, ".arrow": _arrow_rows, ".jsonl": _jsonl_rows}


class FillIndex:
    """Statements of the referenced problems, read from the local downloads (`resolve`), and what was found.

    Args:
        sources: The fill sources; their files are listed (and a missing one is an error) here.
        root: Base of relative paths (``--inputs``).
    """

    def __init__(self, sources: Sequence[FillSource], root: Path | None = None):
        self.files: dict[str, list[tuple[Path, Path, str | None]]] = defaultdict(list)
        for source in sources:
            self.files[source.name].extend((b, f, source.split) for b, f in _source_files(source, root))
        self.paths = {
            name: sorted({s for src in sources if src.name == name for s in src.paths}) for name in self.files
        }
        self.questions: dict[Key, str] = {}
        self.failed: dict[Key, str] = {}
        self.read: dict[str, list[dict]] = defaultdict(list)
        self.rows = Counter()  # rows filled / unresolved per fill source, over every blend source

    def _split_files(self, name: str, split: str) -> list[Path]:
        wanted = _split_name(split)
        files = [f for b, f, s in self.files[name] if (_split_name(s) == wanted if s else wanted in _splits_of(b, f))]
        return _pick_folder(name, split, files)

    def resolve(self, refs: Iterable[Reference]) -> None:
        """Look up every resolvable reference not looked up yet (one streaming pass per split)."""
        todo: dict[tuple[str, str], set[int]] = defaultdict(set)
        for ref in refs:
            key = (ref.source, ref.split, ref.index)
            if ref.index >= 0 and key not in self.questions and key not in self.failed:
                todo[(ref.source, ref.split)].add(ref.index)
        for (name, split), positions in sorted(todo.items()):
            self._resolve_split(name, split, sorted(positions))

    def _resolve_split(self, name: str, split: str, positions: list[int]) -> None:
        fmt = FILL_FORMATS[name]
        if name not in self.files:
            for pos in positions:
                self.failed[(name, split, pos)] = f"no --fill-source {name}=PATH given ({fmt.hub})"
            return
        files = self._split_files(name, split)
        if not files:
            note = f"no {split!r} split under {', '.join(self.paths[name])} (or name it: --fill-source {name}:{split}=PATH)"
            logger.warning("fill source %s: %s", name, note)
            for pos in positions:
                self.failed[(name, split, pos)] = note
            return
        base, found = 0, 0
        for file in files:
            try:
                for pos, row in _READERS[file.suffix](fmt, file, positions, base):
                    if pos < 0:
                        base += row["rows"]
                        continue
                    question = fmt.question(row)
                    if question is None:
                        self.failed[(name, split, pos)] = f"{file}: the problem at position {pos} has no statement"
                    else:
                        self.questions[(name, split, pos)] = question
                        found += 1
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                raise ConfigError(f"fill source {name}: cannot read {file} ({exc}); download it again") from None
            self.read[name].append({"path": str(file), "bytes": file.stat().st_size, "split": split})
        for pos in positions:
            if pos >= base:
                self.failed[(name, split, pos)] = f"position {pos} is beyond the {base} rows of split {split!r}"
        logger.info("fill source %s: %d of %d referenced %s problems found", name, found, len(positions), split)

    def question(self, ref: Reference) -> str | None:
        return self.questions.get((ref.source, ref.split, ref.index))

    def why(self, ref: Reference) -> str:
        """Why `ref` has no statement."""
        return ref.note or self.failed.get((ref.source, ref.split, ref.index), "not looked up")

    def report(self) -> dict:
        """The manifest's ``fill_sources``: per set its paths, files read, problems and rows."""
        report = {}
        for name in sorted(set(self.files) | {k[0] for k in self.failed} | {n for n, _ in self.rows}):
            report[name] = {
                "paths": self.paths.get(name, []),
                "files": self.read.get(name, []),
                "problems_found": sum(1 for k in self.questions if k[0] == name),
                "problems_unresolved": sum(1 for k in self.failed if k[0] == name),
                "rows_filled": self.rows[(name, "filled")],
                "rows_unresolved": self.rows[(name, "unresolved")],
            }
        return report
