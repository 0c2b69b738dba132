"""Scalars of a wandb export (offline files, no wandb client): history CSV/JSON or a panel's CSV.

Two shapes are read:

* **History** (``run.history().to_csv(...)``, ``run.scan_history()`` dumped as JSON or JSON Lines, or an
  old client's ``wandb-history.jsonl``): one row per ``wandb.log`` call, a column per metric. slime logs
  each metric family with its own step metric (``define_metric``): ``eval/*`` against ``eval/step``,
  ``train/*`` against ``train/step``, everything else against ``rollout/step``; each value is placed at the
  step of its family found in the same row. wandb's own ``_step`` counts log calls, not rollouts, and is
  used only when the file has no step column of that family (with a warning).
* **Panel export** (the UI's "Export CSV"): a ``Step`` column and ``<run> - <metric>`` columns (the
  ``__MIN``/``__MAX`` band columns are ignored); one run per distinct ``<run>`` prefix.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .events import Point

SUFFIXES = (".csv", ".json", ".jsonl")
_SKIP_PREFIX = "_"  # _step, _runtime, _timestamp, _wandb
_STEP_KEYS = ("rollout/step", "eval/step", "train/step")


def step_key(metric: str) -> str:
    """The step metric slime defines for `metric`'s family."""
    if metric.startswith("eval/"):
        return "eval/step"
    if metric.startswith("train/"):
        return "train/step"
    return "rollout/step"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _step(value: Any) -> int | None:
    number = _number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _history(rows: list[Mapping[str, Any]], where: str) -> tuple[list[Point], list[str]]:
    columns = {key for row in rows for key in row}
    present = {key for key in _STEP_KEYS if key in columns}
    points: list[Point] = []
    unplaced: dict[str, int] = {}
    fallback: set[str] = set()
    for row in rows:
        for metric, raw in row.items():
            if metric.startswith(_SKIP_PREFIX) or metric in _STEP_KEYS:
                continue
            value = _number(raw)
            if value is None:
                continue
            family = step_key(metric)
            if family not in present:
                fallback.add(family)
                family = "_step"
            step = _step(row.get(family))
            if step is None:
                unplaced[family] = unplaced.get(family, 0) + 1
                continue
            points.append((metric, step, value))
    warnings = [
        f"{where}: no {family} column: {family.split('/')[0]}/* metrics placed at wandb's _step (log calls, "
        "not rollout ids); export rollout/step and eval/step with the history"
        for family in sorted(fallback)
    ]
    warnings += [
        f"{where}: {n} value(s) without a {family} in their row were skipped" for family, n in unplaced.items()
    ]
    return points, warnings


def _panel(rows: list[Mapping[str, Any]], where: str) -> dict[str, tuple[list[Point], list[str]]]:
    runs: dict[str, tuple[list[Point], list[str]]] = {}
    for row in rows:
        step = _step(row.get("Step"))
        for column, raw in row.items():
            if column == "Step" or " - " not in column or column.endswith(("__MIN", "__MAX")):
                continue
            run, _, metric = column.rpartition(" - ")
            points = runs.setdefault(run, ([], []))[0]
            value = _number(raw)
            if value is not None and step is not None:
                points.append((metric, step, value))
    return runs


def _rows(path: Path) -> list[Mapping[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # a JSON Lines file named .json
        if isinstance(data, Mapping) and isinstance(data.get("history"), list):
            data = data["history"]
        if isinstance(data, list):
            return _objects(data, path)
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{lineno}: not a JSON object ({exc.msg}); expected wandb history rows") from None
    return _objects(rows, path)


def _objects(rows: Iterable[Any], path: Path) -> list[Mapping[str, Any]]:
    rows = list(rows)
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, Mapping)), None)
    if bad is not None:
        raise ConfigError(f"{path}: row {bad + 1} is not an object; expected wandb history rows")
    return rows


def read_wandb_export(path: Path) -> dict[str | None, tuple[list[Point], list[str]]]:
    """Points and warnings per run of an export: key None for a history file (one run), else the run names.

    Raises:
        ConfigError: unreadable file, malformed JSON, or no numeric column at all.
    """
    try:
        rows = _rows(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the wandb export: {exc}") from None
    columns = {key for row in rows for key in row}
    if "Step" in columns and any(" - " in c for c in columns):
        runs: dict[str | None, tuple[list[Point], list[str]]] = dict(_panel(rows, str(path)))
    else:
        runs = {None: _history(rows, str(path))}
    if not any(points for points, _ in runs.values()):
        raise ConfigError(
            f"{path}: no numeric metric found; expected a wandb history export (metric columns plus "
            "rollout/step, eval/step) or a panel CSV (Step, '<run> - <metric>')"
        )
    return runs
