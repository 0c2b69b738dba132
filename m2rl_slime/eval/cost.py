"""Training cost per evaluated model (the paper's Table 2), from the launcher's run records.

The cost of a model is the GPU hours of the run(s) that produced it:
- an explicit ``--cost MODEL=PATH[,PATH...]`` (run records or save directories) wins;
- a merged checkpoint (its ``merge_manifest.json`` lists the experts) costs the sum of its experts' runs
  (the merge itself takes minutes on CPUs and is not counted; neither is the SFT run every model shares);
- any other checkpoint costs the run whose record `records.find_record` finds for it (its directory, the
  parent, or the save directory ``X`` of an HF export ``X_hf``).
A model without a record has no cost (None), never 0. Partial totals (a run still going, or one whose end
is only known as an upper bound) are marked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..launch.records import find_record, gpu_hours, load_record

MANIFEST = "merge_manifest.json"


@dataclass(frozen=True, slots=True)
class Cost:
    """GPU hours of a model, the records they come from, and whether any of them is partial."""

    hours: float
    partial: bool
    records: tuple[str, ...]


def merge_info(model_path: str | None) -> tuple[str | None, list[str]]:
    """(merge method, expert paths) of a merged checkpoint, or (None, []) for any other model."""
    if not model_path:
        return None, []
    manifest = Path(model_path) / MANIFEST
    if not manifest.is_file():
        return None, []
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{manifest}: unreadable merge manifest: {exc}") from None
    experts = [str(i["path"]) for i in data.get("inputs", []) if i.get("role") == "expert" and i.get("path")]
    return data.get("method"), experts


def _total(paths: Sequence[str | Path]) -> Cost:
    hours, partial, used = 0.0, False, []
    for path in paths:
        record = load_record(path)
        spent = gpu_hours(record)
        hours += spent.hours
        partial = partial or spent.partial
        used.append(str(record.path))
    return Cost(hours, partial, tuple(used))


def model_cost(model_path: str | None, explicit: Sequence[str] = ()) -> Cost | None:
    """The cost of one model (see the module docstring); None when no record covers it.

    Raises:
        ConfigError: an explicit record is unreadable or malformed.
    """
    if explicit:
        return _total(explicit)
    _, experts = merge_info(model_path)
    if experts:
        found = [find_record(path) for path in experts]
        return _total([f for f in found if f is not None]) if all(found) else None
    if model_path:
        found = find_record(model_path)
        if found is not None:
            return _total([found])
    return None


def parse_cost_args(values: Sequence[str]) -> dict[str, list[str]]:
    """``MODEL=PATH[,PATH...]`` items -> {model: [paths]}.

    Raises:
        ConfigError: an item without ``=``.
    """
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, paths = value.partition("=")
        if not sep or not name or not paths:
            raise ConfigError(f"--cost {value!r}: expected MODEL=RECORD[,RECORD...]")
        out[name] = [p for p in paths.split(",") if p]
    return out


def costs(models: Mapping[str, str | None], explicit: Mapping[str, Sequence[str]]) -> dict[str, Cost | None]:
    """label -> cost for every model (label -> its checkpoint path)."""
    unknown = sorted(set(explicit) - set(models))
    if unknown:
        raise ConfigError(f"--cost names unknown model(s) {', '.join(unknown)}; models: {', '.join(models)}")
    return {label: model_cost(path, explicit.get(label, ())) for label, path in models.items()}
