"""Background shard streaming: output chunks go to a writer thread that appends them to the current
shard (see `io.ShardWriter`) and records every finished shard in the resume state."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .io import ShardWriter
from .manifest import Progress
from .plan import PlannedShard


class ShardStream:
    """Streams output chunks into shards on a background thread; records each finished shard."""

    def __init__(self, out: Path, progress: Progress):
        self._out, self._progress = out, progress
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="merge-write")
        self._pending: deque[Future[Any]] = deque()
        self._shard: ShardWriter | None = None
        self.bytes = 0

    def _submit(self, fn: Callable[[], Any]) -> None:
        self._pending.append(self._exec.submit(fn))
        while len(self._pending) > 2:
            self._pending.popleft().result()

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
        """Wait for queued writes; after any failure, delete the unfinished shard's temporary file."""
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
