"""Run records: when each run started and ended, on how many nodes and GPUs (``m2rl_run_record.json``).

Not a slime hook. The launcher's head node writes the record into the run's save directory (the recipe's
``--save``, or the ``suite.out`` of an eval-only run) when it submits the job, and closes the segment
when the job ends; each launch (a fresh run or a resume) adds one segment::

    {"run_name": "rl_math", "recipe": "recipes/rl_math.yaml",
     "segments": [{"start": "2025-05-01T08:00:00Z", "end": "2025-05-01T20:00:00Z",
                   "nodes": 4, "gpus_per_node": 8, "status": "ok"}]}

GPU hours are the sum over segments of (end - start) x nodes x gpus_per_node. A segment without an end
(the run is still going, or it died before the launcher could close it) counts up to now and makes the
total partial. ``eval compare`` (Table 2) and ``analyze curves`` read records through `load_record`,
`find_record` and `gpu_hours`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

RECORD_NAME = "m2rl_run_record.json"
STATUSES = ("running", "ok", "failed", "interrupted")


@dataclass(frozen=True, slots=True)
class Segment:
    """One launch of a run: from submission to its end (None while it runs or if it died unrecorded).
    `end_known` is False for a segment whose launcher died: its end is the next launch (an upper bound)."""

    start: dt.datetime
    end: dt.datetime | None
    nodes: int
    gpus_per_node: int
    status: str
    end_known: bool = True


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's record: its name, the recipe it was launched from and its segments, oldest first."""

    run_name: str
    recipe: str | None
    segments: tuple[Segment, ...]
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class GpuHours:
    """GPU hours of a run; `partial` when a segment is still open (counted up to `now`) or its end is only
    known as an upper bound."""

    hours: float
    partial: bool


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    """``2025-05-01T08:00:00Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected an ISO 8601 UTC time string, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value  # Python 3.10 rejects "Z"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: not an ISO 8601 time: {value!r} (e.g. 2025-05-01T08:00:00Z)") from None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _segment(raw: Any, where: str) -> Segment:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a segment is an object with start, end, nodes, gpus_per_node, status")
    missing = [key for key in ("start", "nodes", "gpus_per_node") if key not in raw]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    start = _time(raw["start"], f"{where}.start")
    end = None if raw.get("end") is None else _time(raw["end"], f"{where}.end")
    if end is not None and end < start:
        raise ConfigError(f"{where}: end {raw['end']} is before start {raw['start']}")
    status = raw.get("status", "running" if end is None else "ok")
    if status not in STATUSES:
        raise ConfigError(f"{where}.status: {status!r} is not one of {', '.join(STATUSES)}")
    nodes, gpus = _count(raw["nodes"], f"{where}.nodes"), _count(raw["gpus_per_node"], f"{where}.gpus_per_node")
    return Segment(start, end, nodes, gpus, status, not raw.get("end_unknown", False))


def parse_record(raw: Any, where: str = "run record") -> RunRecord:
    """Validate a decoded record (the shape is in the module docstring).

    Raises:
        ConfigError: a field is missing or malformed; the message names it.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a JSON object with run_name and segments")
    name = raw.get("run_name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: run_name must be a non-empty string")
    segments = raw.get("segments")
    if not isinstance(segments, list):
        raise ConfigError(f"{where}: segments must be a list")
    recipe = raw.get("recipe")
    parsed = tuple(_segment(s, f"{where}: segments[{i}]") for i, s in enumerate(segments))
    return RunRecord(name, recipe if isinstance(recipe, str) else None, parsed)


def find_record(path: str | Path) -> Path | None:
    """The record of the run `path` belongs to: the file itself, or ``m2rl_run_record.json`` in `path`,
    its parent, or the save directory an HF export ``<save>_hf`` was converted from (the launcher's
    ``HF_EXPORT_DIR`` convention)."""
    path = Path(path)
    if path.is_file() and path.name == RECORD_NAME:
        return path
    base = path if path.is_dir() else path.parent
    candidates = [base, base.parent]
    if base.name.endswith("_hf"):
        candidates.append(base.with_name(base.name[: -len("_hf")]))
    for directory in candidates:
        if (directory / RECORD_NAME).is_file():
            return directory / RECORD_NAME
    return None


def load_record(path: str | Path) -> RunRecord:
    """Read a run record: the JSON file, or a directory holding ``m2rl_run_record.json``.

    Raises:
        ConfigError: no record there, unreadable JSON, or a malformed field (the message names the file).
    """
    path = Path(path)
    file = path / RECORD_NAME if path.is_dir() else path
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no run record (the launcher writes {RECORD_NAME} into the save dir)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the run record: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    record = parse_record(raw, str(file))
    return RunRecord(record.run_name, record.recipe, record.segments, file)


def gpu_hours(record: RunRecord | str | Path, now: dt.datetime | None = None) -> GpuHours:
    """GPU hours of a run: the sum of (end - start) x nodes x gpus_per_node over its segments.

    Args:
        record: A `RunRecord`, or a path accepted by `load_record`.
        now: The end of open segments (default: the current UTC time); a naive value is taken as UTC.
    """
    if not isinstance(record, RunRecord):
        record = load_record(record)
    now = now or utc_now()
    now = now.replace(tzinfo=dt.timezone.utc) if now.tzinfo is None else now
    hours, partial = 0.0, False
    for seg in record.segments:
        end = seg.end
        if end is None:
            end, partial = max(now, seg.start), True
        partial = partial or not seg.end_known
        hours += (end - seg.start).total_seconds() / 3600.0 * seg.nodes * seg.gpus_per_node
    return GpuHours(hours, partial)


def _dump(record: Mapping[str, Any], file: Path) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, file)


def open_segment(
    directory: str | Path, run_name: str, recipe: str, nodes: int, gpus_per_node: int, now: dt.datetime | None = None
) -> Path:
    """Append a running segment to the record in `directory` (created if absent); return the file.

    A previous segment still marked running (its launcher died before closing it) is closed as
    interrupted at this launch's start, marked ``end_unknown`` (an upper bound: totals become partial).
    """
    file = Path(directory) / RECORD_NAME
    raw: dict[str, Any] = {"run_name": run_name, "recipe": recipe, "segments": []}
    if file.is_file():
        load_record(file)  # a malformed record is an error, never silently replaced
        raw = json.loads(file.read_text(encoding="utf-8"))
    start = iso(now or utc_now())
    for seg in raw["segments"]:
        if seg.get("end") is None:
            end = max(start, seg["start"], key=lambda text: _time(text, str(file)))
            seg.update(end=end, status="interrupted", end_unknown=True)
    segment = {"start": start, "end": None, "nodes": nodes, "gpus_per_node": gpus_per_node, "status": "running"}
    raw["segments"].append(segment)
    _dump(raw, file)
    return file


def close_segment(file: str | Path, status: str, now: dt.datetime | None = None) -> None:
    """Close the last segment of the record with `status` (ok, failed or interrupted)."""
    if status not in STATUSES[1:]:
        raise ConfigError(f"run record status {status!r} is not one of {', '.join(STATUSES[1:])}")
    file = Path(file)
    load_record(file)
    raw = json.loads(file.read_text(encoding="utf-8"))
    last = raw["segments"][-1]
    last["end"], last["status"] = iso(now or utc_now()), status
    _dump(raw, file)
