"""``eval compare DIR...``: several models' evaluations side by side, as the paper's Tables 2-4.

Each directory is one model (its label: ``run.json``'s model id, or ``--names``). Per benchmark the best
and second-best Avg@K are ranked, and every other model is compared with the best by a paired bootstrap
over the items both were scored on (seeded): a model whose 95% interval of the difference contains 0 is
within noise of the best. Table 4 holds the merge methods (models whose checkpoint has a merge manifest,
or those named with ``--merge``) with their average over the benchmarks; the cost block (Table 2) holds
each model's training GPU hours from the launcher's run records (`cost`).

This module computes; `report` renders (markdown, CSV, JSON, PNG).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .cost import costs, merge_info
from .stats import RESAMPLES, paired_bootstrap
from .summary import item_means, summarize

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompareOptions:
    names: tuple[str, ...] = ()
    merges: tuple[str, ...] = ()
    cost: Mapping[str, Sequence[str]] = field(default_factory=dict)
    seed: int = 0
    resamples: int = RESAMPLES


def _labels(directories: Sequence[Path], summaries: list[dict], names: Sequence[str]) -> list[str]:
    if names:
        if len(names) != len(directories):
            raise ConfigError(f"--names gives {len(names)} names for {len(directories)} directories")
        labels = list(names)
    else:
        labels = [str(s.get("model_id") or d.name) for s, d in zip(summaries, directories, strict=True)]
    for i, label in enumerate(labels):  # two runs of one model id (e.g. two seeds): keep both, distinctly
        if labels.count(label) > 1:
            labels[i] = f"{label} ({directories[i].name})"
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels are not unique: {labels}; pass --names")
    return labels


def _benchmarks(summaries: list[dict]) -> list[dict[str, Any]]:
    order: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        for name, entry in summary["benchmarks"].items():
            if name not in order or order[name].get("missing"):
                order[name] = {"name": name, **{k: entry.get(k) for k in ("title", "k", "subset", "sampling", "scorer", "n_expected", "missing")}}  # fmt: skip
    return list(order.values())


def _protocol_warnings(name: str, entries: list[Mapping[str, Any]]) -> list[str]:
    present = [e for e in entries if not e.get("missing") and e.get("avg") is not None]
    notes = []
    for key in ("k", "sampling", "n_items"):
        values = {repr(e.get(key)) for e in present}
        if len(values) > 1:
            notes.append(
                f"{name}: models differ in {key} ({', '.join(sorted(values))}); the scores are not comparable"
            )
    return notes


def _rank(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """best / second: labels whose avg equals the highest / the next distinct value."""
    values = sorted({s["avg"] for s in scores.values() if s.get("avg") is not None}, reverse=True)
    return {
        "best": [m for m, s in scores.items() if values and s.get("avg") == values[0]],
        "second": [m for m, s in scores.items() if len(values) > 1 and s.get("avg") == values[1]],
    }


def compare(directories: Sequence[str | Path], options: CompareOptions | None = None) -> dict[str, Any]:
    """The comparison of the models in `directories` (see the module docstring) as one JSON-able dict.

    Raises:
        ConfigError: fewer than one directory, bad names, an unreadable directory or record.
    """
    options = options or CompareOptions()
    directories = [Path(d) for d in directories]
    if not directories:
        raise ConfigError("give at least one evaluation directory")
    summaries = [summarize(d, write=False) for d in directories]
    labels = _labels(directories, summaries, options.names)
    means = {label: item_means(d) for label, d in zip(labels, directories, strict=True)}
    benchmarks = _benchmarks(summaries)
    scores: dict[str, dict[str, Any]] = {}
    noise: dict[str, dict[str, Any]] = {}
    ranks: dict[str, dict[str, list[str]]] = {}
    warnings: list[str] = []
    for bench in benchmarks:
        name = bench["name"]
        entries = {label: s["benchmarks"].get(name, {"missing": True}) for label, s in zip(labels, summaries, strict=True)}  # fmt: skip
        scores[name] = {label: _cell(e) for label, e in entries.items()}
        warnings += _protocol_warnings(name, list(entries.values()))
        ranks[name] = _rank(scores[name])
        noise[name] = {}
        if ranks[name]["best"]:
            best = ranks[name]["best"][0]
            for label in labels:
                if label != best and scores[name][label].get("avg") is not None:
                    paired = paired_bootstrap(means[best][name], means[label][name], resamples=options.resamples, seed=options.seed)  # fmt: skip
                    noise[name][label] = {"vs": best, "diff": paired.diff, "low": paired.low, "high": paired.high,
                                          "n_common": paired.n_common, "within_noise": paired.within_noise}  # fmt: skip
    paths = {label: s.get("model_path") for label, s in zip(labels, summaries, strict=True)}
    merges = list(options.merges) or [label for label in labels if merge_info(paths[label])[0]]
    unknown = sorted(set(merges) - set(labels))
    if unknown:
        raise ConfigError(f"--merge names unknown model(s) {', '.join(unknown)}; models: {', '.join(labels)}")
    spent = costs(paths, options.cost)
    return {
        "models": labels,
        "directories": [str(d) for d in directories],
        "benchmarks": benchmarks,
        "scores": scores,
        "rank": ranks,
        "noise": noise,
        "average": _averages(benchmarks, scores, labels),
        "merges": merges,
        "merge_average": _averages(benchmarks, scores, merges) if merges else None,
        "merge_methods": {label: merge_info(paths[label])[0] for label in merges},
        "cost": {
            label: (None if c is None else {"gpu_hours": c.hours, "partial": c.partial, "records": list(c.records)})
            for label, c in spent.items()
        },  # fmt: skip
        "bootstrap": {"resamples": options.resamples, "seed": options.seed, "level": 0.95, "unit": "items"},
        "warnings": warnings,
    }


def _cell(entry: Mapping[str, Any]) -> dict[str, Any]:
    if entry.get("missing"):
        return {"missing": True}
    return {k: entry.get(k) for k in ("avg", "stderr", "n_items", "pending", "complete", "scorer_version")}


def _averages(benchmarks: list[dict], scores: Mapping[str, Mapping[str, Any]], labels: list[str]) -> dict[str, Any]:
    """Each model's mean Avg@K over the benchmarks every model has a score on (so averages compare)."""
    shared = [b["name"] for b in benchmarks if all(scores[b["name"]][m].get("avg") is not None for m in labels)]
    values = {m: (sum(scores[b][m]["avg"] for b in shared) / len(shared) if shared else None) for m in labels}
    return {"benchmarks": shared, "values": values}
