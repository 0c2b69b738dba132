"""Reading SFT input files, with jsonl parsing and validation spread over worker processes.

Not a slime hook. A jsonl file is cut into spans of whole lines (about `CHUNK_BYTES`, `spans`); each span is
parsed and checked (`sft_rows.check_row`) by `classify_span`, in this process or in a process pool, and the
results are consumed in file order, so the outcome never depends on the number of workers. A worker reads
its span itself, so only offsets go to it and only the row codes (plus the rows that are not plainly clean)
come back. At most ``2 * workers`` spans are in flight, which bounds memory. Parquet files are read a
record batch at a time in this process (pyarrow already decodes them in C++).

A span's rows are located by `row_bounds` (blank lines skipped, a leading byte-order mark dropped), and a
line is parsed with exactly `json.loads`'s result and errors, without its per-line overhead where the line
is plain UTF-8 that starts an object (`parse_line`).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from json.decoder import WHITESPACE, JSONDecoder
from pathlib import Path
from typing import Any, NamedTuple

from .files import _import_parquet
from .sft_fill import Reference, fill_row, reference_of
from .sft_rows import CLEAN, SFTRowError, check_row, has_placeholder_turn, is_clean

CHUNK_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"
_SPACE = frozenset(b" \t\n\r\x0b\x0c")  # the bytes `bytes.isspace` accepts
_OPEN = ord("{")
_scan = JSONDecoder().scan_once  # what json.loads uses (the C scanner)
INVALID = 0


class Record(NamedTuple):
    """One input row: where it is, its raw jsonl line (None for parquet), and what the check found.

    `code` is `INVALID`, `sft_rows.CLEAN` or `sft_rows.FIXED` (None when the row was not checked);
    `fixed` the re-encoded row when it was FIXED and encoding was asked for; `row` the parsed object
    (parquet only); `error` ``(reason, message)`` of an invalid row; `ref` the problem a valid row with a
    ``-`` placeholder user turn points at (`sft_fill.reference_of`).
    """

    where: str
    raw: bytes | None
    code: int | None = None
    fixed: bytes | None = None
    error: tuple[str, str] | None = None
    ref: Reference | None = None
    row: Any = None


class Chunk(NamedTuple):
    """What `classify_span` found in one span of a jsonl file.

    `codes` holds one byte per row (a non-blank line): `CLEAN` for a row that is valid as it is and has no
    placeholder turn, otherwise the row is in `special`: ``{row: (line, code, fixed, error, ref)}`` in row
    order, `line` its 0-based line in the span and the rest as in `Record`. `lines` counts the span's lines.
    """

    start: int
    end: int
    lines: int
    codes: bytes
    special: dict[int, tuple]


def encode(row: dict) -> bytes:
    """A row as one newline-terminated line of JSON."""
    return json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"


def spans(path: Path) -> Iterator[tuple[int, int]]:
    """``(start, end)`` byte spans of whole lines that cover the file, each about ``CHUNK_BYTES`` (a span
    ends after the first newline at or past that size: linear however long a line is)."""
    with open(path, "rb") as f:
        size, start = os.fstat(f.fileno()).st_size, 0
        while start < size:
            end = start + CHUNK_BYTES
            if end < size:
                f.seek(end - 1)
                f.readline()
                end = f.tell()
            end = min(end, size)
            yield start, end
            start = end


def read_span(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def row_bounds(data: bytes) -> tuple[list[int], list[int], list[int] | None, int]:
    """``(starts, ends, lines, count)`` of the rows of whole-line `data`: a row is a non-blank line, its bytes
    ``data[start:end]`` (the newline included, a leading byte-order mark not); `lines` gives each row's
    0-based line, None when no line is blank (row k is line k); `count` the lines."""
    starts: list[int] = []
    ends: list[int] = []
    lines: list[int] | None = None
    find, size, pos, line = data.find, len(data), 0, 0
    while pos < size:
        end = find(b"\n", pos) + 1 or size
        first = data[pos]
        if first in _SPACE and data[pos:end].isspace():
            if lines is None:
                lines = list(range(len(starts)))
        else:
            starts.append(pos + 3 if first == 0xEF and data.startswith(_BOM, pos) else pos)
            ends.append(end)
            if lines is not None:
                lines.append(line)
        line += 1
        pos = end
    return starts, ends, lines, line


def raw_line(data: bytes, start: int, end: int) -> bytes:
    """Row bytes as they are copied: a last line without a newline gets one."""
    line = data[start:end]
    return line if line.endswith(b"\n") else line + b"\n"


def parse_line(view: memoryview, start: int, end: int) -> Any:
    """``json.loads`` of the row ``view[start:end]`` (a newline added when it has none), with the same
    result and the same errors. A line that starts an object and is plain UTF-8 is decoded and scanned
    directly; anything else (and any error) takes ``json.loads``."""
    if view[start] == _OPEN and end - start > 1 and view[start + 1]:  # json.loads would read it as UTF-8
        try:
            text = str(view[start:end], "utf-8")
            row, stop = _scan(text, 0)
        except (UnicodeDecodeError, StopIteration, ValueError):
            pass  # json.loads raises the error (or accepts what only its 'surrogatepass' decoding allows)
        else:
            size = len(text)
            if stop == size or (stop == size - 1 and text[stop] == "\n") or WHITESPACE.match(text, stop).end() == size:
                return row
    line = bytes(view[start:end])
    return json.loads(line if line.endswith(b"\n") else line + b"\n")


def check(row: Any, encode_fixed: bool) -> tuple[int, bytes | None, tuple[str, str] | None, Reference | None]:
    """(code, fixed encoding, error, placeholder reference) of one parsed row."""
    if is_clean(row):
        return CLEAN, None, None, None
    try:
        code, checked = check_row(row)
    except SFTRowError as exc:
        return INVALID, None, (exc.reason, str(exc)), None
    fixed = encode(checked) if encode_fixed and checked is not row else None
    return code, fixed, None, reference_of(checked) if has_placeholder_turn(checked) else None


def filled(row: Any, question: str) -> bytes:
    """The encoding of a placeholder row (valid in the counting pass) with its ``-`` user turns filled."""
    return encode(fill_row(check_row(row)[1], question))


def classify(data: bytes, start: int, end: int, encode_fixed: bool) -> Chunk:
    """Parse and check every row of the span ``data`` (bytes `start`..`end` of its file)."""
    starts, ends, lines, count = row_bounds(data)
    view = memoryview(data)
    special: dict[int, tuple] = {}
    for k, (s, e) in enumerate(zip(starts, ends)):
        try:
            row = parse_line(view, s, e)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            special[k] = (k, INVALID, None, ("invalid_json", f"invalid JSON ({exc})"), None)
            continue
        found = check(row, encode_fixed)
        if found[0] != CLEAN or found[3] is not None:
            special[k] = (k, *found)
    if lines is not None:
        special = {k: (lines[k], *rest) for k, (_, *rest) in special.items()}
    codes = bytearray([CLEAN]) * len(starts)
    for k, entry in special.items():
        codes[k] = entry[1]
    return Chunk(start, end, count, bytes(codes), special)


def classify_span(path: Path, start: int, end: int, encode_fixed: bool) -> Chunk:
    """`classify` of a span read here (runs in a worker process)."""
    return classify(read_span(path, start, end), start, end, encode_fixed)


def in_order(pool: Any, jobs: Iterator[tuple[Any, Callable | None, tuple]], ahead: int) -> Iterator[tuple[Any, Any]]:
    """``(context, fn(*args))`` for each ``(context, fn, args)`` job, in order (None for a job without `fn`);
    with a `pool` (a `concurrent.futures` executor) up to `ahead` jobs run ahead of the one consumed."""
    if pool is None:
        for context, fn, args in jobs:
            yield context, None if fn is None else fn(*args)
        return
    pending: deque = deque()
    for context, fn, args in jobs:
        pending.append((context, None if fn is None else pool.submit(fn, *args)))
        while len(pending) > ahead:
            context, future = pending.popleft()
            yield context, None if future is None else future.result()
    while pending:
        context, future = pending.popleft()
        yield context, None if future is None else future.result()


def jsonl_chunks(
    path: Path, pool: Any, encode_fixed: bool, ahead: int = 0, with_data: bool = False
) -> Iterator[tuple[Chunk, bytes | None]]:
    """``(chunk, data)`` of each span of a jsonl file in order; `data` (the span's bytes) only when
    `with_data`. Without a pool a span is read once, here; with one, the worker reads it (and this process
    too when `with_data`)."""
    if pool is None:
        for start, end in spans(path):
            data = read_span(path, start, end)
            yield classify(data, start, end, encode_fixed), data if with_data else None
        return
    jobs = ((None, classify_span, (path, start, end, encode_fixed)) for start, end in spans(path))
    for _, chunk in in_order(pool, jobs, ahead):
        yield chunk, read_span(path, chunk.start, chunk.end) if with_data else None


def jsonl_records(path: Path, pool: Any, check_rows: bool, encode_fixed: bool, in_flight: int = 0) -> Iterator[Record]:
    """Records of a jsonl file, one at a time; `check_rows` False yields the raw lines only (no parse)."""
    line_base = 1
    if not check_rows:
        for start, end in spans(path):
            data = read_span(path, start, end)
            starts, ends, lines, count = row_bounds(data)
            for k, (s, e) in enumerate(zip(starts, ends)):
                yield Record(f"{path}:{line_base + (k if lines is None else lines[k])}", raw_line(data, s, e))
            line_base += count
        return
    for chunk, data in jsonl_chunks(path, pool, encode_fixed, in_flight, with_data=True):
        starts, ends, lines, _ = row_bounds(data)
        for k, (s, e) in enumerate(zip(starts, ends)):
            line, *found = chunk.special.get(k) or (k if lines is None else lines[k], CLEAN, None, None, None)
            yield Record(f"{path}:{line_base + line}", raw_line(data, s, e), *found)
        line_base += chunk.lines


def fill_lines(lines: list[bytes], questions: list[str]) -> list[bytes]:
    """Parse, fill and encode placeholder lines (runs in a worker process)."""
    return [filled(json.loads(line), question) for line, question in zip(lines, questions)]


def parquet_records(path: Path, check_rows: bool, encode_fixed: bool) -> Iterator[Record]:
    pq = _import_parquet()
    row_no = 0
    for batch in pq.ParquetFile(path).iter_batches():
        for row in batch.to_pylist():
            row_no += 1
            where = f"{path}:{row_no}"
            yield (
                Record(where, None, *check(row, encode_fixed), row=row) if check_rows else Record(where, None, row=row)
            )
