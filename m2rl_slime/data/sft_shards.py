"""Prepared SFT blend on disk: sharded writers, the manifest, and random access by row id (not a slime hook).

Layout of a blend directory (written by ``python -m m2rl_slime.data prepare-sft``)::

    manifest.json                      # sources, rules, counts, seed, shard list with sha256 hashes
    <source>/part-00000.parquet        # one column `row`: the row's JSON text (newline-terminated);
                                       # row groups of `row_group_rows` rows
    <source>/part-00000.jsonl          # or: one JSON row per line ...
    <source>/part-00000.jsonl.idx.npy  # ... and its line start offsets (int64, rows + 1 entries)

A row is a JSON object with slime's SFT keys (``messages``, ``tools``) and whatever other fields the
input row had. Parquet stores that text rather than nested columns because tool schemas and tool-call
arguments differ from row to row (a typed nested schema cannot hold them) and because a valid input line
can then be copied without re-encoding it. Jsonl shards are plain slime SFT files (``--prompt-data``
works on one of them). Random access: a jsonl row is one seek and read through its offset; a parquet row
is a read of its row group (uniform size, so its number is ``row // row_group_rows``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .files import PYARROW_HINT
from .sft_rules import FORMATS

MANIFEST = "manifest.json"
MANIFEST_KIND = "m2rl-sft-blend"
MANIFEST_VERSION = 1
ROW_COLUMN = "row"
_FLUSH_ROWS = 1024  # rows per batch handed to the writer thread (a multiple of the row group size)
_FLUSH_BYTES = 32 << 20  # ... or fewer rows when they reach this size
_PENDING = 2  # batches queued for the writer thread at most (bounds memory)
_WRITE_BUFFER = 1 << 20  # jsonl shard file buffer

logger = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def have_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _parquet() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(PYARROW_HINT) from None
    return pa, pq


class ShardWriter:
    """Writes the rows (JSON objects, each a line ending with a newline) of one source into rotating shards.

    Rows come one at a time (`write`) or as runs of rows stored back to back (`write_rows`: a span of valid
    input lines copied with one slice, no per-row copy). Building the parquet table, compression, hashing
    and file writes run on one background thread (they release the GIL for most of their time), so they
    overlap with the parsing and validation of the next rows; at most `_PENDING` batches wait.

    Args:
        directory: The source's output directory (inside the run's work directory).
        fmt: ``parquet`` or ``jsonl``.
        shard_rows: Rows per shard.
        row_group_rows: Rows per parquet row group.
    """

    def __init__(self, directory: Path, fmt: str, shard_rows: int, row_group_rows: int):
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; known: {', '.join(FORMATS)}")
        self.directory, self.fmt = directory, fmt
        self.shard_rows, self.row_group_rows = shard_rows, row_group_rows
        self.flush_rows = max(1, _FLUSH_ROWS // row_group_rows) * row_group_rows
        self.shards: list[dict] = []
        self._rows = 0
        self._open: Any = None
        self._pieces: list[Any] = []  # buffered bytes-like pieces, back to back
        self._ends: list[int] = []  # end offset of each buffered row within the buffer
        self._bytes = 0  # bytes buffered
        self._written = 0  # bytes of the open shard handed to the writer thread
        self._offsets: list[int] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()

    def _submit(self, fn: Any, *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sft-shard-writer")
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > _PENDING:
            self._pending.popleft().result()

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"part-{len(self.shards):05d}.{self.fmt}"
        self._path = self.directory / name
        self._rows = self._written = 0
        if self.fmt == "jsonl":
            self._open = open(self._path, "wb", buffering=_WRITE_BUFFER)
            self._offsets = [0]
            self._digest = hashlib.sha256()
        else:
            pa, pq = _parquet()
            schema = pa.schema([(ROW_COLUMN, pa.string())])
            self._open = pq.ParquetWriter(
                self._path, schema, compression="zstd", use_dictionary=False, write_statistics=False
            )

    def write(self, encoded: bytes, copies: int = 1) -> None:
        """Append `copies` copies of one row: valid UTF-8 JSON text ending with a newline."""
        for _ in range(copies):
            self.write_rows(encoded, (len(encoded),))

    def write_rows(self, data: Any, ends: Sequence[int]) -> None:
        """Append the rows stored back to back in `data` (bytes-like); ``ends[k]`` is the end offset of row k
        in `data` (ascending, the last one ``len(data)``), every row valid UTF-8 JSON ending with a newline.
        `data` is kept (not copied) until written."""
        view, first, begin = memoryview(data), 0, 0
        while first < len(ends):
            if self._open is None:
                self._start()
            last = min(len(ends), first + self.shard_rows - self._rows)
            stop = ends[last - 1]
            base = self._bytes - begin
            self._pieces.append(view[begin:stop])
            self._ends.extend([base + end for end in ends[first:last]])
            self._bytes += stop - begin
            self._rows += last - first
            first, begin = last, stop
            if self._rows >= self.shard_rows:
                self._finish()
            elif len(self._ends) >= self.flush_rows or self._bytes >= _FLUSH_BYTES:
                self._flush()

    def _take(self, rows: int) -> tuple[list[Any], list[int]]:
        """Remove the first `rows` buffered rows: (their pieces, their ends)."""
        if rows == len(self._ends):
            taken = self._pieces, self._ends
            self._pieces, self._ends, self._bytes = [], [], 0
            return taken
        cut, size, k = self._ends[rows - 1], 0, 0
        while size + len(self._pieces[k]) <= cut:
            size += len(self._pieces[k])
            k += 1
        head, tail = self._pieces[:k], self._pieces[k:]
        if size < cut:  # the cut falls inside tail[0]
            head.append(tail[0][: cut - size])
            tail[0] = tail[0][cut - size :]
        ends = self._ends[:rows]
        self._pieces, self._ends = tail, [end - cut for end in self._ends[rows:]]
        self._bytes -= cut
        return head, ends

    def _flush(self, last: bool = False) -> None:
        """Hand the buffered rows to the writer thread (parquet: whole row groups, unless `last`)."""
        rows = len(self._ends)
        if self.fmt == "parquet" and not last:
            rows -= rows % self.row_group_rows
        if rows == 0:
            return
        pieces, ends = self._take(rows)
        if self.fmt == "jsonl":
            self._offsets.extend([self._written + end for end in ends])
            self._written += ends[-1]
            self._submit(_write_jsonl, self._open, self._digest, pieces)
        else:
            self._submit(_write_parquet, self._open, pieces, ends, self.row_group_rows)

    def _finish(self) -> None:
        # No fsync per shard: the manifest, written last, records every shard's size (checked when the
        # blend is opened) and sha256, so a shard torn by a machine crash is detected, not read.
        self._flush(last=True)
        self._drain()
        entry = {"file": f"{self.directory.name}/{self._path.name}", "rows": self._rows}
        self._open.close()
        self._open = None
        if self.fmt == "jsonl":
            index = self._path.with_name(self._path.name + ".idx.npy")
            np.save(index, np.asarray(self._offsets, dtype=np.int64))
            entry["index"] = f"{self.directory.name}/{index.name}"
            entry["index_sha256"] = sha256_file(index)
            entry["sha256"] = self._digest.hexdigest()
        else:
            entry["sha256"] = sha256_file(self._path)
        entry["bytes"] = self._path.stat().st_size
        self.shards.append(entry)

    def close(self) -> list[dict]:
        """Finish the open shard; returns the shard entries of the manifest."""
        if self._open is not None:
            self._finish()
        self._shutdown()
        return self.shards

    def abort(self) -> None:
        """Stop without finishing (the work directory is deleted by the caller)."""
        try:
            self._drain()
        except Exception:  # the run is failing already; its first error is the one reported
            logger.debug("shard writer: pending write failed during abort", exc_info=True)
        finally:
            self._pending.clear()
            self._pieces, self._ends = [], []
            if self._open is not None:
                self._open.close()
                self._open = None
            self._shutdown()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _write_jsonl(handle: Any, digest: Any, pieces: list[Any]) -> None:
    handle.writelines(pieces)
    for piece in pieces:
        digest.update(piece)


def _write_parquet(writer: Any, pieces: list[Any], ends: list[int], row_group_rows: int) -> None:
    """One table of the buffered rows (a string column over their bytes, no per-row copy) in row groups."""
    pa, _ = _parquet()
    data = pa.py_buffer(b"".join(pieces))
    wide = ends[-1] >= 2**31  # a string column holds less than 2 GiB per batch: the cast then says so
    offsets = np.zeros(len(ends) + 1, dtype=np.int64 if wide else np.int32)
    offsets[1:] = ends
    kind = pa.large_string() if wide else pa.string()
    array = pa.Array.from_buffers(kind, len(ends), [None, pa.py_buffer(offsets), data])
    if wide:
        array = array.cast(pa.string())
    writer.write_table(pa.table({ROW_COLUMN: array}), row_group_rows)


def manifest_path(path: str | Path) -> Path:
    path = Path(path)
    return path / MANIFEST if path.is_dir() else path


def read_manifest(path: str | Path) -> dict:
    """The manifest of a blend directory (or of the manifest file itself).

    Raises:
        ConfigError: missing, unreadable or of another kind/version.
    """
    file = manifest_path(path)
    if not file.is_file():
        raise ConfigError(f"{path}: no {MANIFEST}; build the blend with `python -m m2rl_slime.data prepare-sft`")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: unreadable manifest ({exc})") from None
    if manifest.get("kind") != MANIFEST_KIND or manifest.get("version") != MANIFEST_VERSION:
        raise ConfigError(f"{file}: not a version-{MANIFEST_VERSION} {MANIFEST_KIND} manifest")
    return manifest


class BlendReader:
    """Random access to the rows of a prepared blend; holds only indexes, never the rows.

    Args:
        path: The blend directory or its ``manifest.json``.
        max_open: Shard files kept open at once (least recently used are closed).
    """

    def __init__(self, path: str | Path, max_open: int = 16):
        self.manifest = read_manifest(path)
        self.root = manifest_path(path).parent
        self.format = self.manifest["format"]
        self.row_group_rows = int(self.manifest["row_group_rows"])
        self.shards: list[tuple[str, Path, str | None]] = []  # (source, shard path, index path)
        counts = []
        for source in self.manifest["sources"]:
            for shard in source["shards"]:
                file = self.root / shard["file"]
                if not file.is_file() or file.stat().st_size != shard["bytes"]:
                    raise ConfigError(f"{file}: missing or not the size the manifest records; rebuild the blend")
                index = shard.get("index")
                self.shards.append((source["name"], file, str(self.root / index) if index else None))
                counts.append(shard["rows"])
        self.starts = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)
        self.max_open = max_open
        self._handles: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def source_of(self, row_id: int) -> str:
        return self.shards[int(np.searchsorted(self.starts, row_id, side="right")) - 1][0]

    def _handle(self, shard: int) -> Any:
        handle = self._handles.get(shard)
        if handle is not None:
            self._handles.move_to_end(shard)
            return handle
        _, file, index = self.shards[shard]
        if self.format == "jsonl":
            handle = (open(file, "rb"), np.load(index, mmap_mode="r"))
        else:
            handle = _parquet()[1].ParquetFile(file)
        self._handles[shard] = handle
        if len(self._handles) > self.max_open:
            _, old = self._handles.popitem(last=False)
            (old[0] if isinstance(old, tuple) else old).close()
        return handle

    def read(self, row_ids: Sequence[int]) -> list[tuple[str, dict]]:
        """``(source, row)`` for each id, in the order given (ids may repeat)."""
        ids = np.asarray(row_ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"row id out of range [0, {len(self)})")
        shard_of = np.searchsorted(self.starts, ids, side="right") - 1
        texts: dict[int, bytes | str] = {}
        for shard in np.unique(shard_of):
            local = {int(i): int(i - self.starts[shard]) for i in ids[shard_of == shard]}
            texts.update(self._read_shard(int(shard), local))
        out = []
        for row_id, shard in zip(ids.tolist(), shard_of.tolist()):
            out.append((self.shards[shard][0], json.loads(texts[row_id])))
        return out

    def _read_shard(self, shard: int, local: dict[int, int]) -> dict[int, bytes | str]:
        handle = self._handle(shard)
        texts: dict[int, bytes | str] = {}
        if self.format == "jsonl":
            file, offsets = handle
            for row_id, row in sorted(local.items(), key=lambda item: item[1]):
                start, end = int(offsets[row]), int(offsets[row + 1])
                file.seek(start)
                texts[row_id] = file.read(end - start)
            return texts
        groups: dict[int, list[tuple[int, int]]] = {}
        for row_id, row in local.items():
            groups.setdefault(row // self.row_group_rows, []).append((row_id, row % self.row_group_rows))
        for group, members in sorted(groups.items()):
            column = handle.read_row_group(group, columns=[ROW_COLUMN]).column(0)
            for row_id, position in members:
                texts[row_id] = column[position].as_py()
        return texts

    def close(self) -> None:
        for handle in self._handles.values():
            (handle[0] if isinstance(handle, tuple) else handle).close()
        self._handles.clear()
