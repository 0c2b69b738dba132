"""Row files: streaming jsonl/parquet readers with line numbers, and all-or-nothing writers."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError

_SLICE_SUFFIX = re.compile(r"^(?P<path>.*)@\[-?\d*:-?\d*\]$")
PYARROW_HINT = "reading parquet needs pyarrow: pip install pyarrow"


def strip_slice(path: str) -> str:
    """`path` without slime's ``@[start:end]`` row-slice suffix."""
    match = _SLICE_SUFFIX.match(path)
    return match.group("path") if match else path


def _import_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(PYARROW_HINT) from None
    return pq


def iter_rows(path: str | Path) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(row_number, row, error)`` for every row of a ``.jsonl`` or ``.parquet`` file.

    Row numbers are 1-based (the jsonl line number). A jsonl line that is not valid JSON yields
    ``(line, None, message)`` instead of raising; blank lines are skipped.

    Raises:
        ConfigError: the file is missing, has another extension, or is parquet without pyarrow.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, json.loads(line), None
                except json.JSONDecodeError as exc:
                    yield line_no, None, f"invalid JSON ({exc.msg} at column {exc.colno})"
    elif path.suffix == ".parquet":
        pq = _import_parquet()
        row_no = 0
        for batch in pq.ParquetFile(path).iter_batches():
            for row in batch.to_pylist():
                row_no += 1
                yield row_no, row, None
    else:
        raise ConfigError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl or .parquet")


def first_row_keys(path: str | Path) -> set[str]:
    """Top-level keys of the first row of a jsonl file, or the column names of a parquet file.

    Raises:
        ConfigError: the file is missing, empty, unreadable or of another type.
    """
    path = Path(strip_slice(str(path)))
    if path.suffix == ".parquet":
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        return set(_import_parquet().read_schema(path).names)
    for line_no, row, error in iter_rows(path):
        if error is not None:
            raise ConfigError(f"{path}:{line_no}: {error}")
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
        return set(row)
    raise ConfigError(f"{path}: the file has no rows")


def drop_incomplete_last_line(path: str | Path) -> bool:
    """Truncate an append-only jsonl file after its last newline (reading backwards in blocks, never the
    whole file): what an interrupted writer left half-written. True when something was removed."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(end - 1)
        if handle.read(1) == b"\n":
            return False
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            cut = handle.read(end - start).rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return True
            end = start
        handle.truncate(0)
    return True


def _open_temp(final: Path) -> tuple[IO[str], str]:
    """A new hidden sibling of `final`, created exclusively with the usual umask-derived permissions."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    return open(tmp, "x", encoding="utf-8"), str(tmp)


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[str]]:
    """Write text to `path` through a temporary sibling that replaces it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = _open_temp(path)
    try:
        with handle as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JsonlShards:
    """One temporary jsonl file per key; `commit()` renames them all into place, `discard()` deletes them.

    Args:
        out_dir: Destination directory.
        name: Maps a key to its final file name.
    """

    def __init__(self, out_dir: Path, name: Any = lambda key: f"{key}.jsonl"):
        self.out_dir = Path(out_dir)
        self.name = name
        self._files: dict[str, tuple[IO[str], str]] = {}
        self.counts: dict[str, int] = {}

    def write(self, key: str, row: Any) -> None:
        if key not in self._files:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._files[key] = _open_temp(self.out_dir / self.name(key))
            self.counts[key] = 0
        self._files[key][0].write(json.dumps(row, ensure_ascii=False) + "\n")
        self.counts[key] += 1

    def commit(self) -> dict[str, Path]:
        """Close and rename every shard; returns key -> final path."""
        out = {}
        for key, (f, tmp) in self._files.items():
            f.flush()
            os.fsync(f.fileno())
            f.close()
            final = self.out_dir / self.name(key)
            os.replace(tmp, final)
            out[key] = final
        self._files.clear()
        return out

    def discard(self) -> None:
        for f, tmp in self._files.values():
            f.close()
            Path(tmp).unlink(missing_ok=True)
        self._files.clear()
