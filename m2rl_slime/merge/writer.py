"""Shard writing. `ShardWriter` streams one safetensors shard: the header is known up front (shapes and
dtypes come from the plan), so tensor bytes go to disk chunk by chunk and no shard is ever held in
memory; the shard is written under a temporary name, fsynced and renamed, so a crash never leaves a
half-written shard under its final name. `ShardStream` feeds shards from a background thread and records
every finished shard in the resume state; after any failure the unfinished shard's temporary file is
deleted and nothing queued behind the failure runs."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import M2RLError
from .io import DTYPES, TMP_SUFFIX, fsync_dir
from .plan import PlannedShard
from .workdir import Progress

_SYNC_EVERY = 256 << 20  # bytes written between fdatasync calls of a shard


def safetensors_header(entries: Sequence[tuple[str, str, tuple[int, ...]]], metadata: dict[str, str]) -> bytes:
    """Serialize a safetensors header (length prefix + JSON padded to 8 bytes) for tensors laid out in order."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, code, shape in entries:
        n = DTYPES[code][1]
        for d in shape:
            n *= d
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


class ShardWriter:
    """Write one safetensors shard as a stream: header, then tensor bytes in plan order.

    The file is written as ``<name>.tmp`` and renamed to its final name by `close()` after an fsync.
    """

    def __init__(self, path: Path, entries: Sequence[tuple[str, str, tuple[int, ...]]], metadata: dict[str, str]):
        self.path = path
        self._tmp = path.with_name(path.name + TMP_SUFFIX)
        header = safetensors_header(entries, metadata)
        self._expected = len(header) + sum(_nbytes(c, s) for _, c, s in entries)
        self._sha = hashlib.sha256()
        self._unsynced = 0
        self._file = open(self._tmp, "wb")  # noqa: SIM115 (stays open across write() calls; close/abort)
        try:
            self._write(header)
        except BaseException:
            self.abort()
            raise

    def _write(self, data: Any) -> None:
        self._file.write(data)
        self._sha.update(data)
        self._unsynced += len(data)
        if self._unsynced >= _SYNC_EVERY:  # start writeback while the merge goes on: close()'s fsync stays short
            os.fdatasync(self._file.fileno())
            self._unsynced = 0

    def write(self, tensor: Any) -> None:
        """Append the bytes of a contiguous CPU tensor."""
        import torch

        self._write(memoryview(tensor.contiguous().view(torch.uint8).numpy()))

    def close(self) -> tuple[int, str]:
        """Flush, fsync and rename to the final name; return (size in bytes, sha256 hex)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        size = self._file.tell()
        self._file.close()
        if size != self._expected:
            raise M2RLError(f"internal error: shard {self.path.name} has {size} bytes, expected {self._expected}")
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)
        return size, self._sha.hexdigest()

    def abort(self) -> None:
        """Close and delete the temporary file, whatever closing it raises.

        Closing flushes the buffered bytes. After ENOSPC (the usual reason to abort) that flush fails the
        same way, and the file must still be deleted: the error is dropped, the cause is already raised.
        """
        try:
            if not self._file.closed:
                self._file.close()
        except OSError:
            pass
        finally:
            self._tmp.unlink(missing_ok=True)


def _nbytes(code: str, shape: tuple[int, ...]) -> int:
    n = DTYPES[code][1]
    for d in shape:
        n *= d
    return n


class ShardStream:
    """Streams output chunks into shards on a background thread; records each finished shard."""

    def __init__(self, out: Path, progress: Progress):
        self._out, self._progress = out, progress
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="merge-write")
        self._pending: deque[Future[Any]] = deque()
        self._shard: ShardWriter | None = None
        self._error: BaseException | None = None
        self._cancelled = False
        self.bytes = 0

    def _submit(self, fn: Callable[[], Any]) -> None:
        self._pending.append(self._exec.submit(self._guarded, fn))
        while len(self._pending) > 2:
            self._pending.popleft().result()

    def _guarded(self, fn: Callable[[], Any]) -> None:
        """Run one queued step on the writer thread; after a failure the steps queued behind it are skipped
        (they would open the next shard and lose track of the unfinished one)."""
        if self._error is not None or self._cancelled:
            return
        try:
            fn()
        except BaseException as exc:
            self._error = exc
            raise

    def open(self, shard: PlannedShard) -> None:
        entries = [(t.name, t.out_dtype, t.shape) for t in shard.tensors]
        self._submit(lambda: setattr(self, "_shard", ShardWriter(self._out / shard.file, entries, {"format": "pt"})))

    def write(self, buf: Any) -> None:
        self._submit(lambda: self._shard.write(buf))

    def close(self, shard: PlannedShard, stats: dict[str, Any]) -> None:
        def finish() -> None:
            size, sha = self._shard.close()
            self._shard = None
            self.bytes += size
            self._progress.record(shard.file, size, sha, stats)

        self._submit(finish)

    def shutdown(self, failed: bool) -> None:
        """Wait for queued writes (skipped when `failed`); after any failure, delete the unfinished shard's
        temporary file."""
        self._cancelled = failed
        error: BaseException | None = None
        try:
            while self._pending:
                exc = self._pending.popleft().exception()
                error = error or exc
        finally:
            if (failed or error) and self._shard is not None:
                self._shard.abort()
            self._exec.shutdown(wait=True)
        if error is not None and not failed:
            raise error
