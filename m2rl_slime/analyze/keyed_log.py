"""Append-only JSONL records with a key, for the analyses that call servers (``kl``, ``selfverify``).

Same guarantees as the evaluation runner's ``samples.jsonl``: one JSON object per line, a key (a tuple of
named fields) is never written twice, a line torn by a kill (no final newline) is cut off when the log is
reopened, and a rerun of a killed command writes only what is missing. `KeyedLog` remembers the byte
offset of every record, so a resumed run can re-read one stored record (`read_at`) without holding the
whole file in memory. `locked` keeps a second process off the same output directory.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._dirlock import hold
from ..data.files import drop_incomplete_last_line
from ..errors import ConfigError

logger = logging.getLogger(__name__)
LOCK = ".analyze.lock"
Key = tuple[Any, ...]


def record_key(record: Mapping[str, Any], fields: Sequence[str]) -> Key:
    """The key of `record`: its values of `fields`, in order (KeyError when one is missing)."""
    return tuple(record[name] for name in fields)


def read_records(path: str | Path, fields: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(byte offset, record)`` for every complete line of a keyed JSONL file.

    A last line without its newline (an interrupted write) is skipped with a warning.

    Raises:
        ConfigError: a complete line that is not a JSON object carrying every key field (file:line).
    """
    path = Path(path)
    offset = 0
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                logger.warning("%s:%d: incomplete last line ignored (an interrupted write)", path, line_no)
                return
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                record_key(record, fields)
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{line_no}: not a record with {', '.join(fields)} ({exc!r})") from None
            yield start, record


class KeyedLog:
    """An append-only keyed JSONL file (see the module docstring).

    Args:
        path: The file (created if absent).
        fields: The names of the key fields.
    """

    def __init__(self, path: str | Path, fields: Sequence[str]):
        self.path = Path(path)
        self.fields = tuple(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.offsets: dict[Key, int] = {}
        if self.path.is_file():
            for offset, record in read_records(self.path, self.fields):
                self.offsets.setdefault(record_key(record, self.fields), offset)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._reader = None

    def _repair_tail(self) -> None:
        if drop_incomplete_last_line(self.path):
            logger.warning("%s: removed an incomplete last line (the previous run was interrupted)", self.path)

    def __contains__(self, key: Key) -> bool:
        return key in self.offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, record: Mapping[str, Any]) -> bool:
        """Write `record` as one line; False (nothing written) when its key is already present."""
        key = record_key(record, self.fields)
        if key in self.offsets:
            return False
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self.offsets[key] = offset
        return True

    def read_at(self, key: Key) -> dict[str, Any]:
        """The stored record of `key` (KeyError when absent)."""
        offset = self.offsets[key]
        if self._reader is None:
            self._reader = self.path.open("rb")
        self._reader.seek(offset)
        return json.loads(self._reader.readline())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> KeyedLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextmanager
def locked(directory: str | Path, command: str) -> Iterator[None]:
    """Hold `directory`'s lock while `command` writes into it.

    Raises:
        ConfigError: another process holds it.
    """
    with hold(directory, LOCK, f"`analyze {command}`"):
        yield
