"""Fig. 5 from ``gains.json`` alone: ``fig5_gains.png``, grouped bars of cos(g_union, g_model) per benchmark
with bootstrap whiskers, the noise floor cos(g_union, g_sft') as a dashed line over each group, and "n/a"
where the cosine is undefined (an all-zero gain vector)."""

from __future__ import annotations

import json
from pathlib import Path

from ..outputs import new_figure, save_png


def plot(json_path: Path, out_dir: Path) -> list[Path]:
    """Draw Fig. 5; returns the file written."""
    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    models, benchmarks = report["models"], report["benchmarks"]
    fig = new_figure(1.2 * len(benchmarks) * max(1, len(models)) / 2 + 3.0, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        xs, ys, lows, highs = [], [], [], []
        for j, bench in enumerate(benchmarks):
            res = report["results"][bench]
            entry = res.get("models", {}).get(model, {})
            x = j - 0.4 + width * (i + 0.5)
            if entry.get("cos") is None:
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="grey")
                continue
            xs.append(x)
            ys.append(entry["cos"])
            lows.append(entry["cos"] - entry["low"] if entry.get("low") is not None else 0.0)
            highs.append(entry["high"] - entry["cos"] if entry.get("high") is not None else 0.0)
        ax.bar(xs, ys, width, label=model, yerr=[lows, highs], capsize=3)
    labelled = False
    for j, bench in enumerate(benchmarks):
        floor = report["results"][bench].get("noise_floor", {}).get("cos")
        if floor is not None:
            label = None if labelled else "noise floor (SFT reseed)"
            ax.hlines(floor, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1.2, label=label)
            labelled = True
    labels = [f"{b}\n(n={report['results'][b]['n_items']})" for b in benchmarks]
    ax.set_xticks(range(len(benchmarks)), labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("cos(g_union, g_model)")
    ax.set_title(f"Gain consistency; whiskers: {int(100 * report['level'])}% bootstrap over items", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return [save_png(fig, Path(out_dir) / "fig5_gains.png")]
