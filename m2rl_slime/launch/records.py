"""Reader of the launcher's run records (``m2rl_run_record.json`` in a run's save directory): GPU hours.

Not a slime hook. The launcher writes the record when a run starts and updates it when the run ends; each
start (a fresh run or a resume) is one segment::

    {"run_name": "rl_math", "recipe": "recipes/rl_math.yaml",
     "segments": [{"start": "2025-05-01T08:00:00Z", "end": "2025-05-01T20:00:00Z",
                   "nodes": 4, "gpus_per_node": 8, "status": "ok"}]}

GPU hours are the sum over segments of (end - start) x nodes x gpus_per_node. A segment without an end
(the run is still going, or it died before the launcher could close it) counts up to now and makes the
total partial. `eval compare` (Table 2) and `analyze curves` (Figs. 2 and 9) both read records here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

RECORD_NAME = "m2rl_run_record.json"
STATUSES = ("running", "ok", "failed", "interrupted")


@dataclass(frozen=True, slots=True)
class Segment:
    """One start of a run: from launch to its end (None while it runs or if it died unrecorded)."""

    start: dt.datetime
    end: dt.datetime | None
    nodes: int
    gpus_per_node: int
    status: str


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's record: its name, the recipe it was launched from and its segments, oldest first."""

    run_name: str
    recipe: str | None
    segments: tuple[Segment, ...]
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class GpuHours:
    """GPU hours of a run; `partial` when a segment is still open (counted up to `now`)."""

    hours: float
    partial: bool


def _time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected an ISO 8601 UTC time string, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value  # Python 3.10 rejects "Z"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: not an ISO 8601 time: {value!r} (e.g. 2025-05-01T08:00:00Z)") from None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _segment(raw: Any, where: str) -> Segment:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a segment must be an object with start, end, nodes, gpus_per_node, status")
    missing = [k for k in ("start", "nodes", "gpus_per_node") if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    start = _time(raw["start"], f"{where}.start")
    end = None if raw.get("end") is None else _time(raw["end"], f"{where}.end")
    if end is not None and end < start:
        raise ConfigError(f"{where}: end {raw['end']} is before start {raw['start']}")
    status = raw.get("status", "running" if end is None else "ok")
    if status not in STATUSES:
        raise ConfigError(f"{where}.status: {status!r} is not one of {', '.join(STATUSES)}")
    return Segment(
        start=start,
        end=end,
        nodes=_positive_int(raw["nodes"], f"{where}.nodes"),
        gpus_per_node=_positive_int(raw["gpus_per_node"], f"{where}.gpus_per_node"),
        status=status,
    )


def parse_record(raw: Any, where: str = "run record") -> RunRecord:
    """Validate a decoded record (see the module docstring for the shape).

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
    return RunRecord(
        run_name=name,
        recipe=recipe if isinstance(recipe, str) else None,
        segments=tuple(_segment(s, f"{where}: segments[{i}]") for i, s in enumerate(segments)),
    )


def find_record(path: str | Path) -> Path | None:
    """The record belonging to `path`: the file itself, or ``m2rl_run_record.json`` in `path` or its parent.

    The parent is searched so that a run's TensorBoard directory (``$SAVE_DIR/tensorboard``) or an exported
    file inside the save directory finds the record of its run.
    """
    path = Path(path)
    if path.is_file() and path.name == RECORD_NAME:
        return path
    base = path if path.is_dir() else path.parent
    for directory in (base, base.parent):
        candidate = directory / RECORD_NAME
        if candidate.is_file():
            return candidate
    return None


def load_record(path: str | Path) -> RunRecord:
    """Read a run record: the JSON file itself, or the save directory that holds ``m2rl_run_record.json``.

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
    """GPU hours of a run: sum of (end - start) x nodes x gpus_per_node over its segments.

    Args:
        record: A `RunRecord`, or a path accepted by `load_record`.
        now: The end of open segments (default: the current UTC time). A naive value is taken as UTC.

    Returns:
        The hours, and whether an open segment made them partial.
    """
    if not isinstance(record, RunRecord):
        record = load_record(record)
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    hours, partial = 0.0, False
    for seg in record.segments:
        end = seg.end
        if end is None:
            end, partial = max(now, seg.start), True
        hours += (end - seg.start).total_seconds() / 3600.0 * seg.nodes * seg.gpus_per_node
    return GpuHours(hours=hours, partial=partial)
