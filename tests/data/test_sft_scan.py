"""Pins the jsonl scanning and shard writing of prepare-sft (`m2rl_slime.data.sft_scan`, `sft_shards`): a line
parses exactly as `json.loads` parses it, rows are found as the line-list rule finds them, and runs of rows are
written exactly as the same rows one by one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from m2rl_slime.data import sft_scan
from m2rl_slime.data.sft_shards import ShardWriter

LINES = [
    b'{"a": 1}\n',
    b'{"a": "\xce\xbb \xe6\x95\xb0"}\r\n',
    b'{"a": 1}  \t\n',
    b'{"a": 1} x\n',
    b'{"a": 1}{"b": 2}\n',
    b'{"a": \n',
    b'{"a": "\xff"}\n',
    b'{"a": "\xed\xa0\x80"}\n',  # an encoded surrogate: json.loads decodes with 'surrogatepass'
    b"{\x00}\x00\n",  # json.loads reads this as UTF-16
    b'  {"a": 1}\n',
    b"[1, 2]\n",
    b"3\n",
    b'"s"\n',
    b"{}\n",
    b"{\n",
    b'{"a": NaN}\n',
    b'{"a": 1, "a": 2}\n',
    b'{"a": "tab\tinside"}\n',
    b'{"a": 1}',
]


def _loads(line: bytes):
    try:
        return "ok", json.loads(line if line.endswith(b"\n") else line + b"\n")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("line", LINES)
def test_a_line_parses_exactly_as_json_loads_parses_it(line):
    data = b"xx" + line + b'{"next": 1}\n'
    try:
        got = "ok", sft_scan.parse_line(memoryview(data), 2, 2 + len(line))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        got = type(exc).__name__, str(exc)
    assert repr(got) == repr(_loads(line))  # repr: NaN equals itself there


def _by_clean_lines(data: bytes) -> list[tuple[int, bytes]]:
    """The rows by the line-list rule the first reader used: every non-blank line, a newline added to a last
    line without, a leading byte-order mark dropped; (1-based line number, bytes)."""
    out = []
    for i, line in enumerate(data.splitlines(keepends=True)):
        if line.isspace():
            continue
        line = line if line.endswith(b"\n") else line + b"\n"
        out.append((1 + i, line[3:] if line.startswith(b"\xef\xbb\xbf") else line))
    return out


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}\n\n  \n\x0c\n{"b": 2}\r\n',
        b'\xef\xbb\xbf{"a": 1}\n{"b": 2}',
        b"\n\n",
        b'{"a": 1}\n\xef\xbb\xbf\n   ',
        b"x",
    ],
)
def test_rows_are_found_as_clean_lines_finds_them(data):
    starts, ends, lines, count = sft_scan.row_bounds(data)
    rows = [
        (1 + (k if lines is None else lines[k]), sft_scan.raw_line(data, s, e))
        for k, (s, e) in enumerate(zip(starts, ends))
    ]
    assert rows == _by_clean_lines(data)
    assert count == len(data.splitlines(keepends=True))


def test_spans_cover_the_file_in_whole_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(sft_scan, "CHUNK_BYTES", 7)
    path = tmp_path / "x.jsonl"
    data = b"".join([b"a" * n + b"\n" for n in (1, 30, 5, 6, 7, 0, 2)]) + b"tail"
    path.write_bytes(data)
    spans = list(sft_scan.spans(path))
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(data[end - 1 : end] == b"\n" for _, end in spans[:-1])
    assert b"".join(sft_scan.read_span(path, s, e) for s, e in spans) == data


ROWS = [json.dumps({"i": i, "pad": "x" * (i % 7)}).encode() + b"\n" for i in range(40)]


def _write(tmp_path, name: str, fmt: str, runs: list[list[bytes]]) -> list[dict]:
    writer = ShardWriter(tmp_path / name, fmt, shard_rows=9, row_group_rows=4)
    for run in runs:
        if len(run) == 1:
            writer.write(run[0])
        else:
            writer.write_rows(b"".join(run), np.cumsum([len(r) for r in run]).tolist())
    return writer.close()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_runs_of_rows_are_written_as_the_same_rows_one_by_one(tmp_path, fmt):
    pq = pytest.importorskip("pyarrow.parquet") if fmt == "parquet" else None
    one = _write(tmp_path, "one", fmt, [[row] for row in ROWS])
    cuts = [0, 1, 3, 13, 14, 30, 40]  # runs across shard and row-group boundaries
    runs = _write(tmp_path, "runs", fmt, [ROWS[a:b] for a, b in zip(cuts, cuts[1:])])
    assert [s["rows"] for s in runs] == [9, 9, 9, 9, 4]
    names = ("file", "index")
    for a, b in zip(one, runs, strict=True):
        assert {k: v for k, v in a.items() if k not in names} == {k: v for k, v in b.items() if k not in names}
        first, second = tmp_path / a["file"], tmp_path / b["file"]
        assert first.read_bytes() == second.read_bytes()
        if fmt == "parquet":
            meta = pq.ParquetFile(second).metadata
            groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            assert groups == ([4, 4, 1] if b["rows"] == 9 else [4])
