"""Reading SFT input files row by row, with jsonl parsing and validation spread over worker processes.

Not a slime hook. A jsonl file is cut into chunks of whole lines (about `CHUNK_BYTES`); each chunk is parsed
and checked (`sft_rows.check_row`) by `classify_chunk`, in this process or in a process pool, and the
results are consumed in file order, so the outcome never depends on the number of workers. At most
``2 * workers`` chunks are in flight, which bounds memory. Parquet files are read a record batch at a time
in this process (pyarrow already decodes them in C++).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .files import _import_parquet
from .sft_fill import Reference, fill_row, reference_of
from .sft_rows import SFTRowError, check_row, has_placeholder_turn

CHUNK_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"
INVALID = 0


class Record(NamedTuple):
    """One input row: where it is, its raw jsonl line (None for parquet), and what the check found.

    `code` is `INVALID`, `sft_rows.CLEAN` or `sft_rows.FIXED` (None when the row was not checked);
    `fixed` the re-encoded row when it was FIXED and encoding was asked for (or the filled row, in a fill
    pass); `row` the parsed object (parquet only); `error` ``(reason, message)`` of an invalid row; `ref` the
    problem a valid row with a ``-`` placeholder user turn points at (`sft_fill.reference_of`).
    """

    where: str
    raw: bytes | None
    code: int | None = None
    fixed: bytes | None = None
    error: tuple[str, str] | None = None
    ref: Reference | None = None
    row: Any = None


def encode(row: dict) -> bytes:
    """A row as one newline-terminated line of JSON."""
    return json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"


def clean_lines(lines: list[bytes], first_line: int) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the non-blank lines of a chunk; every line ends with a newline (one is
    added to a last line without), a leading byte-order mark is dropped. JSON allows the trailing
    newline (and a CR before it), so the line is stored as read: no copy."""
    for i, line in enumerate(lines):
        if line.isspace():
            continue
        if not line.endswith(b"\n"):
            line += b"\n"
        if line.startswith(_BOM):  # a byte-order mark would not survive the copy into a shard
            line = line[len(_BOM) :]
        yield first_line + i, line


def check(row: Any, encode_fixed: bool) -> tuple[int, bytes | None, tuple[str, str] | None, Reference | None]:
    """(code, fixed encoding, error, placeholder reference) of one parsed row."""
    try:
        code, checked = check_row(row)
    except SFTRowError as exc:
        return INVALID, None, (exc.reason, str(exc)), None
    fixed = encode(checked) if encode_fixed and checked is not row else None
    return code, fixed, None, reference_of(checked) if has_placeholder_turn(checked) else None


def filled(row: Any, question: str) -> bytes:
    """The encoding of a placeholder row (valid in the counting pass) with its ``-`` user turns filled."""
    return encode(fill_row(check_row(row)[1], question))


def classify_chunk(lines: list[bytes], first_line: int, encode_fixed: bool) -> list[tuple]:
    """Parse and check every line of a chunk (runs in a worker process); one result tuple per line."""
    results = []
    for line_no, line in clean_lines(lines, first_line):
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            results.append((line_no, INVALID, None, ("invalid_json", f"invalid JSON ({exc})"), None))
            continue
        results.append((line_no, *check(row, encode_fixed)))
    return results


def iter_chunks(path: Path) -> Iterator[tuple[int, list[bytes]]]:
    """``(first line number, lines)`` chunks of about ``CHUNK_BYTES`` (``readlines`` with a size hint:
    linear however long a line is)."""
    line_no = 1
    with open(path, "rb") as f:
        while True:
            lines = f.readlines(CHUNK_BYTES)
            if not lines:
                return
            yield line_no, lines
            line_no += len(lines)


def jsonl_records(path: Path, pool: Any, check_rows: bool, encode_fixed: bool, in_flight: int = 0) -> Iterator[Record]:
    """Records of a jsonl file; `check_rows` False yields the raw lines only (no parse).

    With a `pool` (a `concurrent.futures` executor), up to `in_flight` chunks are checked ahead.
    """
    if not check_rows:
        for first, chunk in iter_chunks(path):
            for line_no, line in clean_lines(chunk, first):
                yield Record(f"{path}:{line_no}", line)
        return
    pending: deque = deque()

    def drain(limit: int) -> Iterator[Record]:
        while len(pending) > limit:
            chunk, first, result = pending.popleft()
            results = result.result() if pool is not None else result
            for (line_no, line), (result_no, *found) in zip(clean_lines(chunk, first), results):
                assert line_no == result_no
                yield Record(f"{path}:{line_no}", line, *found)

    in_flight = in_flight if pool is not None else 0
    for first, chunk in iter_chunks(path):
        if pool is None:
            pending.append((chunk, first, classify_chunk(chunk, first, encode_fixed)))
        else:
            pending.append((chunk, first, pool.submit(classify_chunk, chunk, first, encode_fixed)))
        yield from drain(in_flight)
    yield from drain(0)


def fill_lines(lines: list[bytes], questions: list[str]) -> list[bytes]:
    """Parse, fill and encode placeholder lines (runs in a worker process)."""
    return [filled(json.loads(line), question) for line, question in zip(lines, questions)]


def jsonl_filled_records(path: Path, pool: Any, fills: Any, in_flight: int = 0) -> Iterator[Record]:
    """Raw records of a jsonl file (not parsed), except the placeholder rows to fill, which come back filled in
    `Record.fixed` (parsed, filled and encoded by the `pool`, or here without one).

    ``fills(n)`` is called once per chunk, in file order, with the chunk's number of rows; it returns
    ``{row offset in the chunk: statement}`` for the rows to fill.
    """
    pending: deque = deque()

    def drain(limit: int) -> Iterator[Record]:
        while len(pending) > limit:
            lines, wanted, result = pending.popleft()
            done = dict(zip(wanted, result.result() if pool is not None and wanted else result))
            for k, (line_no, line) in enumerate(lines):
                yield Record(f"{path}:{line_no}", line, fixed=done.get(k))

    in_flight = in_flight if pool is not None else 0
    for first, chunk in iter_chunks(path):
        lines = list(clean_lines(chunk, first))
        questions = fills(len(lines))
        wanted = sorted(questions)
        args = ([lines[k][1] for k in wanted], [questions[k] for k in wanted])
        if pool is None or not wanted:
            pending.append((lines, wanted, fill_lines(*args) if wanted else []))
        else:
            pending.append((lines, wanted, pool.submit(fill_lines, *args)))
        yield from drain(in_flight)
    yield from drain(0)


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
