"""The files of an evaluation directory and their guarantees.

- ``samples.jsonl``: one JSON line per sample (`FIELDS`), append-only while generating. The key of a
  sample is (benchmark, uid, sample_idx) and is never written twice: `SampleLog` reads the keys present
  before appending, and a line torn by a kill (no final newline) is cut off when the log is reopened.
  Only ``eval score`` rewrites the file, atomically (temporary file, fsync, rename).
- ``items.jsonl``: per item ``{benchmark, uid, n, correct, mean}``, derived from the samples (rebuildable).
- ``run.json``: what was evaluated (suite, model, checkpoint hash, servers) and by which version.
- ``summary.json``: written by ``eval summarize``.

A sample whose ``reward`` is null is pending: generated, not scored yet (a deferred scorer). It never
counts as 0; items and summaries leave it out and say so.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._dirlock import hold
from ..data.files import atomic_writer, drop_incomplete_last_line
from ..errors import ConfigError

logger = logging.getLogger(__name__)

SAMPLES, ITEMS, RUN, SUMMARY = "samples.jsonl", "items.jsonl", "run.json", "summary.json"
LOCK = ".eval.lock"
FIELDS = (
    "suite", "benchmark", "uid", "sample_idx", "model_id", "ckpt_sha", "prompt_sha",
    "response", "reasoning", "content", "reward", "reason", "details",
    "status", "finish_reason", "prompt_tokens", "response_tokens",
    "temperature", "top_p", "max_tokens", "seed", "scorer", "scorer_version", "generated_at",
)  # fmt: skip
STATUSES = ("completed", "truncated", "aborted", "failed")
Key = tuple[str, str, int]


def sample_key(record: Mapping[str, Any]) -> Key:
    return (str(record["benchmark"]), str(record["uid"]), int(record["sample_idx"]))


def ordered(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with `FIELDS` first (in order, null when absent), then any extra keys (``messages``)."""
    out = {name: record.get(name) for name in FIELDS}
    out.update({k: v for k, v in record.items() if k not in out})
    return out


def dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(ordered(record), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def read_samples(path: str | Path, *, allow_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Yield the samples of a ``samples.jsonl``.

    A last line without its newline (a run killed while writing it) is skipped with a warning; any other
    unreadable line is an error naming file:line.

    Raises:
        ConfigError: the file is missing, or a line is not a JSON object with a sample key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (run `python -m m2rl_slime.eval run` or `collect` first)")
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n") and allow_torn_tail:
                logger.warning("%s:%d: incomplete last line ignored (an interrupted write)", path, line_no)
                return
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                sample_key(record)
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{line_no}: not a sample record ({type(exc).__name__}: {exc})") from None
            yield record


class SampleLog:
    """An append-only ``samples.jsonl`` that refuses duplicate keys (see the module docstring).

    Args:
        path: The file (created if absent).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.keys: set[Key] = {sample_key(r) for r in read_samples(self.path)} if self.path.is_file() else set()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair_tail(self) -> None:
        if drop_incomplete_last_line(self.path):
            logger.warning("%s: removed an incomplete last line (the previous run was interrupted)", self.path)

    def __contains__(self, key: Key) -> bool:
        return key in self.keys

    def append(self, record: Mapping[str, Any]) -> bool:
        """Write one sample as one line; False (nothing written) when its key is already present."""
        key = sample_key(record)
        if key in self.keys:
            return False
        data = dumps(record).encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.keys.add(key)
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SampleLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_atomic(path: str | Path, lines: Iterable[str]) -> None:
    """Write `lines` to `path` through a temporary sibling (fsync'd) that replaces it only when all are written."""
    with atomic_writer(path) as handle:
        handle.writelines(lines)


def write_json(path: str | Path, value: Any) -> None:
    write_atomic(path, [json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"])


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON: {exc}") from None


def item_rows(samples: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per item: n scored samples, their summed reward (``correct``) and its mean; pending samples left out.

    Items come out in the order their first sample appears.
    """
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for record in samples:
        if record.get("reward") is None:
            continue
        entry = sums[(str(record["benchmark"]), str(record["uid"]))]
        entry[0] += 1
        entry[1] += float(record["reward"])
    return [
        {"benchmark": b, "uid": u, "n": n, "correct": round(total, 6), "mean": total / n}
        for (b, u), (n, total) in sums.items()
    ]


def write_items(directory: str | Path) -> Path:
    """Rebuild ``items.jsonl`` of `directory` from its samples; return the path."""
    directory = Path(directory)
    rows = item_rows(read_samples(directory / SAMPLES))
    path = directory / ITEMS
    write_atomic(path, (json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


@contextmanager
def locked(directory: str | Path) -> Iterator[None]:
    """Hold the directory's lock: one writer (``run``, ``collect``, ``score``) at a time.

    Raises:
        ConfigError: another process holds it.
    """
    with hold(directory, LOCK, "`m2rl_slime.eval` process"):
        yield
