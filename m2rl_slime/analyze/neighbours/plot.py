"""Fig. 4 from ``kl.json`` alone: one heat map per multi-domain model, ``fig4_kl_<multi>.png``.

Rows are the experts (samplers), columns the data domains; the colour and the first line of a cell are
the estimate the neighbourhood rule uses (with its standard error), the second line is delta-Perf
(points) when summaries were given. Neighbours have a thick black frame, the diagonal a dashed one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..outputs import new_figure, save_png


def _heatmap(report: Mapping[str, Any], multi: str, path: Path) -> Path:
    import numpy as np
    from matplotlib.patches import Rectangle

    rule = report["rule"]
    experts, domains = report["experts"], report["domains"]
    cells = report["matrices"][multi]["cells"]
    data = np.array([[np.nan if cells[b][a]["value"] is None else cells[b][a]["value"] for a in domains]
                     for b in experts], dtype=float)  # fmt: skip
    fig = new_figure(1.5 * len(domains) + 2.4, 1.0 * len(experts) + 1.6)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(np.ma.masked_invalid(data), cmap="YlOrRd", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"KL ({rule['estimator']}, per {rule['normalisation']})")
    finite = data[np.isfinite(data)]
    middle = float(np.median(finite)) if finite.size else 0.0
    for i, b in enumerate(experts):
        for j, a in enumerate(domains):
            cell = cells[b][a]
            if cell["value"] is None:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="grey")
                continue
            se = f"±{cell['se']:.2g}" if cell["se"] is not None else ""
            text = f"{cell['value']:.3g}{se}"
            if cell.get("delta_perf") is not None:
                text += f"\nΔ{cell['delta_perf']:+.1f}"
            colour = "white" if cell["value"] > middle and finite.size > 1 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
            if cell["neighbour"] or cell["diagonal"]:
                ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="black",
                                       linewidth=2.4 if cell["neighbour"] else 1.2,
                                       linestyle="-" if cell["neighbour"] else "--"))  # fmt: skip
    ax.set_xticks(range(len(domains)), domains)
    ax.set_yticks(range(len(experts)), experts)
    ax.set_xlabel("data domain (prompts)")
    ax.set_ylabel("expert (sampler)")
    ref = (report.get("perf") or {}).get("ref")
    note = f"; Δ = ΔPerf vs {ref} (points)" if ref else ""
    ax.set_title(f"KL(expert ‖ {multi}); framed: neighbours ({rule['rule']} rule){note}", fontsize=9)
    return save_png(fig, path)


def plot(json_path: Path, out_dir: Path) -> list[Path]:
    """Draw Fig. 4 (one heat map per multi model) from ``kl.json``; returns the files written."""
    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    paths = []
    for multi in report["multis"]:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", multi)
        paths.append(_heatmap(report, multi, Path(out_dir) / f"fig4_kl_{safe}.png"))
    return paths
