"""Rendering of a comparison (`compare.compare`): the paper's layout in markdown, CSV files, JSON, a chart.

Table 3: benchmarks x models, Avg@K in percent with its standard error, the best **bold**, the second
<u>underlined</u>, and a dagger on scores within noise of the best (paired bootstrap over items); each row
names its n and K. Table 4: the merge methods x benchmarks with their average. Table 2: GPU hours per
model, with each model's share of every merge's cost. The chart needs matplotlib (``pip install
m2rl-slime[analysis]``); the numbers never do.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .samples import write_atomic

DAGGER = "†"


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _mark(text: str, label: str, rank: Mapping[str, Sequence[str]]) -> str:
    if label in rank.get("best", ()):
        return f"**{text}**"
    if label in rank.get("second", ()):
        return f"<u>{text}</u>"
    return text


def _score_cell(cell: Mapping[str, Any], label: str, rank: Mapping[str, Sequence[str]], noise: Mapping) -> str:
    if cell.get("missing"):
        return "missing"
    if cell.get("avg") is None:
        return "pending"
    text = _mark(_pct(cell["avg"]), label, rank)
    if cell.get("stderr") is not None:
        text += f" ±{_pct(cell['stderr'], 1)}"
    if noise.get(label, {}).get("within_noise"):
        text += f" {DAGGER}"
    if cell.get("pending") or cell.get("complete") is False:
        text += " (partial)"
    return text


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table3(comparison: Mapping[str, Any]) -> str:
    """Benchmarks x models (markdown)."""
    models = comparison["models"]
    lines = [_row(["Benchmark", "n", "K", *models]), _row(["---"] * (3 + len(models)))]
    for bench in comparison["benchmarks"]:
        name = bench["name"]
        scores, rank, noise = comparison["scores"][name], comparison["rank"][name], comparison["noise"][name]
        n_items = sorted({str(c.get("n_items")) for c in scores.values() if c.get("n_items")}) or ["-"]
        cells = [_score_cell(scores[m], m, rank, noise) for m in models]
        lines.append(_row([str(bench.get("title") or name), "/".join(n_items), str(bench.get("k") or "-"), *cells]))
    average = comparison["average"]
    if average["benchmarks"]:
        values = average["values"]
        rank = _rank_values(values)
        cells = [_mark(_pct(values[m]), m, rank) for m in models]
        lines.append(_row([f"Average ({len(average['benchmarks'])})", "", "", *cells]))
    if any(comparison["cost"].values()):
        lines.append(_row(["GPU hours", "", "", *(_hours(comparison["cost"].get(m)) for m in models)]))
    return "\n".join(lines)


def _rank_values(values: Mapping[str, float | None]) -> dict[str, list[str]]:
    distinct = sorted({v for v in values.values() if v is not None}, reverse=True)
    return {
        "best": [m for m, v in values.items() if distinct and v == distinct[0]],
        "second": [m for m, v in values.items() if len(distinct) > 1 and v == distinct[1]],
    }


def _hours(cost: Mapping[str, Any] | None) -> str:
    if not cost:
        return "-"
    return f"{cost['gpu_hours']:.1f}" + (" (partial)" if cost["partial"] else "")


def table4(comparison: Mapping[str, Any]) -> str | None:
    """Merge methods x benchmarks with the average column (markdown), or None without merges."""
    merges = comparison["merges"]
    if not merges:
        return None
    benches = comparison["benchmarks"]
    titles = [str(b.get("title") or b["name"]) for b in benches]
    lines = [_row(["Method", *titles, "Average"]), _row(["---"] * (2 + len(titles)))]
    ranks = {b["name"]: _rank_values({m: comparison["scores"][b["name"]][m].get("avg") for m in merges}) for b in benches}  # fmt: skip
    average = comparison["merge_average"]["values"]
    avg_rank = _rank_values(average)
    for label in merges:
        method = comparison["merge_methods"].get(label)
        cells = []
        for bench in benches:
            cell = comparison["scores"][bench["name"]][label]
            cells.append(_mark(_pct(cell.get("avg")), label, ranks[bench["name"]]) if cell.get("avg") is not None else ("missing" if cell.get("missing") else "pending"))  # fmt: skip
        name = f"{label} ({method})" if method and method != label else label
        lines.append(_row([name, *cells, _mark(_pct(average.get(label)), label, avg_rank)]))
    return "\n".join(lines)


def table2(comparison: Mapping[str, Any]) -> str | None:
    """GPU hours per model and each model's cost relative to each merge's (markdown), or None without records."""
    costs = comparison["cost"]
    if not any(costs.values()):
        return None
    merges = [m for m in comparison["merges"] if costs.get(m)]
    lines = [_row(["Model", "GPU hours", *(f"% of {m}" for m in merges)]), _row(["---"] * (2 + len(merges)))]
    for label in comparison["models"]:
        cost = costs.get(label)
        ratios = [
            f"{100 * cost['gpu_hours'] / costs[m]['gpu_hours']:.1f}%" if cost and costs[m]["gpu_hours"] > 0 else "-"
            for m in merges
        ]
        lines.append(_row([label, _hours(cost), *ratios]))
    return "\n".join(lines)


def footnotes(comparison: Mapping[str, Any]) -> list[str]:
    boot = comparison["bootstrap"]
    notes = [
        f"Avg@K in %, ± one standard error over items; **best**, <u>second</u>; {DAGGER} within noise of the best "
        f"(paired bootstrap over items, {boot['resamples']} resamples, seed {boot['seed']}, 95% interval contains 0).",
    ]
    for bench in comparison["benchmarks"]:
        sampling = bench.get("sampling") or {}
        parts = [f"K={bench.get('k')}", f"T={sampling.get('temperature')}", f"top_p={sampling.get('top_p')}",
                 f"max_tokens={sampling.get('max_tokens')}", f"scorer {bench.get('scorer')}"]  # fmt: skip
        if bench.get("subset"):
            parts.append(str(bench["subset"]))
        notes.append(f"{bench.get('title') or bench['name']}: " + ", ".join(parts))
    return notes + [f"warning: {w}" for w in comparison["warnings"]]


def markdown(comparison: Mapping[str, Any]) -> str:
    """Tables 3, 4 and 2 with their notes."""
    parts = ["### Benchmarks x models (Table 3)", table3(comparison)]
    four = table4(comparison)
    if four:
        parts += ["### Merge methods (Table 4)", four]
    two = table2(comparison)
    if two:
        parts += ["### Training cost (Table 2)", two]
    parts.append("\n".join(f"- {note}" for note in footnotes(comparison)))
    return "\n\n".join(parts) + "\n"


def long_rows(comparison: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (model, benchmark): the tidy form of Table 3."""
    rows = []
    for bench in comparison["benchmarks"]:
        name = bench["name"]
        for label in comparison["models"]:
            cell, noise = comparison["scores"][name][label], comparison["noise"][name].get(label, {})
            rows.append({
                "model": label, "benchmark": name, "title": bench.get("title"), "k": bench.get("k"),
                "n_items": cell.get("n_items"), "avg": cell.get("avg"), "stderr": cell.get("stderr"),
                "pending": cell.get("pending"), "missing": bool(cell.get("missing")),
                "best": label in comparison["rank"][name]["best"], "second": label in comparison["rank"][name]["second"],
                "within_noise_of_best": noise.get("within_noise"), "diff_vs_best": noise.get("diff"),
                "gpu_hours": (comparison["cost"].get(label) or {}).get("gpu_hours"),
            })  # fmt: skip
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def table4_rows(comparison: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label in comparison["merges"]:
        row = {"model": label, "method": comparison["merge_methods"].get(label)}
        row.update({b["name"]: comparison["scores"][b["name"]][label].get("avg") for b in comparison["benchmarks"]})
        row["average"] = comparison["merge_average"]["values"].get(label)
        rows.append(row)
    return rows


def chart(comparison: Mapping[str, Any], path: str | Path) -> None:
    """A grouped bar chart (benchmarks x models, standard-error bars) as PNG.

    Raises:
        ConfigError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "the chart needs matplotlib: pip install 'm2rl-slime[analysis]' (or pass --no-png)"
        ) from None
    benches = comparison["benchmarks"]
    models = comparison["models"]
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(benches) * max(1, len(models)) ** 0.5), 4.0))
    for i, label in enumerate(models):
        cells = [comparison["scores"][b["name"]][label] for b in benches]
        values = [100 * (c.get("avg") or 0.0) for c in cells]
        errors = [100 * (c.get("stderr") or 0.0) for c in cells]
        xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(benches))]
        ax.bar(xs, values, width, yerr=errors, capsize=2, label=label)
    ax.set_xticks(range(len(benches)))
    ax.set_xticklabels([f"{b.get('title') or b['name']}\n@{b.get('k')}" for b in benches], fontsize=8)
    ax.set_ylabel("Avg@K (%)")
    ax.legend(fontsize=7, ncol=min(4, len(models)))
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_outputs(comparison: Mapping[str, Any], out: str | Path, *, png: bool | None) -> list[Path]:
    """Write compare.json, table3.md, table3.csv (long form), table4.csv and chart.png (when `png` is True, or
    None and matplotlib is importable) into `out`; return the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    files = {
        "compare.json": json.dumps(comparison, indent=2, ensure_ascii=False, default=str) + "\n",
        "tables.md": markdown(comparison),
        "table3.csv": _csv(long_rows(comparison)),
    }
    if comparison["merges"]:
        files["table4.csv"] = _csv(table4_rows(comparison))
    for name, text in files.items():
        write_atomic(out / name, [text])
        written.append(out / name)
    if png is None:
        import importlib.util

        png = importlib.util.find_spec("matplotlib") is not None
    if png:
        chart(comparison, out / "chart.png")
        written.append(out / "chart.png")
    return written
