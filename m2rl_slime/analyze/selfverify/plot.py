"""Figs. 6-8 from ``selfverify.json`` alone.

* ``fig6_gen_vs_judge.png``: per mode, each model's generation average (x) against its judge average (y),
  the least-squares line, and r, p (two-sided t-test), n and the bootstrap interval in the title;
* ``fig7_outcome_vs_process.png``: per benchmark, the judge accuracy of each mode, mean over models (dots:
  the models), the always-correct baseline dashed;
* ``fig8_process_by_model.png``: per benchmark, the process-mode accuracy of the Fig. 8 models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..outputs import new_figure, save_png


def _scatter(report: Mapping[str, Any], path: Path) -> Path:
    modes = report["modes"]
    fig = new_figure(4.2 * len(modes), 3.8)
    axes = fig.subplots(1, len(modes), squeeze=False)[0]
    for ax, mode in zip(axes, modes):
        points = [(m, t["average"]["gen"], t["average"][mode]) for m, t in report["table7"].items()
                  if t["average"]["gen"] is not None and t["average"][mode] is not None]  # fmt: skip
        xs, ys = [100 * p[1] for p in points], [100 * p[2] for p in points]
        ax.scatter(xs, ys)
        for name, x, y in zip((p[0] for p in points), xs, ys):
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        c = report["correlation"][mode]
        if c["r"] is not None and len(xs) >= 2:
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            lo, hi = min(xs), max(xs)
            ax.plot([lo, hi], [my + slope * (lo - mx), my + slope * (hi - mx)], linestyle="--", color="grey")
            ci = f", CI [{c['low']:.2f}, {c['high']:.2f}]" if c.get("low") is not None else ""
            title = f"{mode}: r = {c['r']:+.2f}, p = {c['p']:.2g}, n = {c['n']}{ci}"
        else:
            title = f"{mode}: r undefined ({c.get('reason')})"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("generation average (Avg@K x 100)")
        ax.set_ylabel(f"{mode} judge accuracy (x 100)")
    return save_png(fig, path)


def _bars(ax: Any, groups: list[str], series: Mapping[str, list[float | None]]) -> None:
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(groups))]
        kept = [(x, 100 * v) for x, v in zip(xs, values) if v is not None]
        ax.bar([k[0] for k in kept], [k[1] for k in kept], width, label=label)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _by_mode(report: Mapping[str, Any], path: Path) -> Path:
    benches, models = report["benchmarks"], report["models"]
    acc = lambda m, mode, b: (report["metrics"][m][mode].get(b) or {}).get("accuracy")  # noqa: E731
    fig = new_figure(1.6 * len(benches) + 2.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, benches, {mode: [_mean([acc(m, mode, b) for m in models]) for b in benches] for mode in report["modes"]})
    base = [_mean([(report["metrics"][m][mode].get(b) or {}).get("always_correct") for m in models
                   for mode in report["modes"]]) for b in benches]  # fmt: skip
    for j, v in enumerate(base):
        if v is not None:
            ax.hlines(100 * v, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1.0)
    ax.set_ylabel("judge accuracy (x 100), mean over models")
    ax.set_title("Outcome vs process verification; dashed: always-'correct' baseline", fontsize=9)
    return save_png(fig, path)


def _process_by_model(report: Mapping[str, Any], path: Path) -> Path | None:
    models = report.get("fig8_models") or report["models"]
    if "process" not in report["modes"] or not models:
        return None
    benches = report["benchmarks"]
    fig = new_figure(1.6 * len(benches) + 2.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, benches, {m: [(report["metrics"][m]["process"].get(b) or {}).get("accuracy") for b in benches]
                        for m in models})  # fmt: skip
    ax.set_ylabel("process-mode judge accuracy (x 100)")
    ax.set_title("Process verification per model", fontsize=9)
    return save_png(fig, path)


def plot(json_path: Path, out_dir: Path) -> list[Path]:
    """Draw Figs. 6-8 from ``selfverify.json``; returns the files written."""
    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    out_dir = Path(out_dir)
    paths = [
        _scatter(report, out_dir / "fig6_gen_vs_judge.png"),
        _by_mode(report, out_dir / "fig7_outcome_vs_process.png"),
    ]
    fig8 = _process_by_model(report, out_dir / "fig8_process_by_model.png")
    return paths + ([fig8] if fig8 else [])
