"""The numbers of the curves, written atomically: ``curves.csv``, ``runs.csv`` and ``curves.json``.

``curves.csv`` has one row per point of every line of every figure (long format: filter it by figure and
panel): ``figure, panel, run, line, tag, step, value, smoothed, gpu_hours, gpu_hours_partial``.
``runs.csv`` has one row per run. ``curves.json`` (written last, so its presence means the CSVs are
complete) is what ``python -m m2rl_slime.analyze plot`` draws from.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...data.files import atomic_writer

JSON_NAME = "curves.json"
CURVES_CSV = "curves.csv"
RUNS_CSV = "runs.csv"
_CURVE_COLUMNS = (
    "figure",
    "panel",
    "run",
    "line",
    "tag",
    "step",
    "value",
    "smoothed",
    "gpu_hours",
    "gpu_hours_partial",
)
_RUN_COLUMNS = ("run", "kind", "source", "metrics", "last_step", "gpu_hours", "gpu_hours_partial", "record", "files")


def _cell(value: Any) -> Any:
    return "" if value is None else value


def write_outputs(description: Mapping[str, Any], out: Path) -> list[Path]:
    """Write the CSVs and the JSON of `description` (from `figures.describe`) into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    runs = {run["name"]: run for run in description["runs"]}
    with atomic_writer(out / CURVES_CSV) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_CURVE_COLUMNS)
        for figure in description["figures"]:
            for panel in figure["panels"]:
                for line in panel["lines"]:
                    run = runs[line["run"]]
                    for step, value, smoothed in zip(line["steps"], line["values"], line["smoothed"], strict=True):
                        writer.writerow(
                            [
                                figure["id"],
                                panel["title"],
                                line["run"],
                                line["key"],
                                line["tag"],
                                step,
                                _cell(value),
                                _cell(smoothed),
                                _cell(run["gpu_hours"]),
                                _cell(run["gpu_hours_partial"]),
                            ]
                        )
    with atomic_writer(out / RUNS_CSV) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_RUN_COLUMNS)
        for run in description["runs"]:
            row = {**run, "run": run["name"], "files": " ".join(run["files"])}
            writer.writerow([_cell(row[c]) for c in _RUN_COLUMNS])
    with atomic_writer(out / JSON_NAME) as f:
        json.dump(description, f, indent=1, allow_nan=False)
        f.write("\n")
    return [out / CURVES_CSV, out / RUNS_CSV, out / JSON_NAME]
