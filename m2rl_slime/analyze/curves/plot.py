"""Figures of the training curves, drawn from ``curves.json`` alone (matplotlib, the ``[analysis]`` extra).

One PNG per figure of the description (``fig9_reward.png``, ``fig2_benchmarks.png``, ``truncation.png``,
``response_len.png``), one panel per entry of its ``panels``. The raw values are drawn faint and the
smoothed ones solid (as TensorBoard does); a line keeps its colour across the panels of a figure (a domain in
Fig. 9-like figures, a run in Fig. 2). Panels per run have their own legend (titled with the run's GPU hours);
panels per benchmark share one legend of the runs. Drawn with matplotlib's object API on an Agg canvas (no pyplot, no
global state) and written atomically.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...merge.io import write_atomic

HINT = 'pip install -e ".[analysis]" (or pip install matplotlib), then: python -m m2rl_slime.analyze plot DIR'
_COLUMNS = 3
_MARKERS_BELOW = 40  # points per line under which each point gets a marker (eval curves are sparse)


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (figures need it; the numbers never do)."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(f"figures need matplotlib, which is not installed: {HINT}") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _nan(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _draw_panel(ax: Any, panel: Mapping[str, Any], colors: Mapping[str, Any], ylabel: str, per_key: bool) -> None:
    for line in panel["lines"]:
        color = colors[line["label"] if per_key else line["key"]]
        marker = "o" if len(line["steps"]) < _MARKERS_BELOW else None
        if line["smoothing"] > 0:
            ax.plot(line["steps"], _nan(line["values"]), color=color, alpha=0.25, linewidth=1)
        ax.plot(
            line["steps"],
            _nan(line["smoothed"]),
            color=color,
            linewidth=1.6,
            marker=marker,
            markersize=3,
            label=line["label"],
        )
    ax.set_title(panel["title"])
    ax.set_xlabel("rollout step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if not per_key:  # a panel per run: its domains, titled with its GPU hours
        ax.legend(title=panel.get("legend_title"), fontsize="small", title_fontsize="small")


def draw_figure(figure: Mapping[str, Any], path: Path) -> Path:
    """Draw one figure of the description into `path` (PNG)."""
    panels = figure["panels"]
    cols = min(len(panels), _COLUMNS)
    rows = math.ceil(len(panels) / cols)
    fig = _figure(4.6 * cols, 3.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    per_key = figure["layout"] == "per_key"
    names: list[str] = []
    for panel in panels:
        for line in panel["lines"]:
            name = line["label"] if per_key else line["key"]
            if name not in names:
                names.append(name)
    palette = [f"C{i % 10}" for i in range(len(names))]
    colors = dict(zip(names, palette))
    for ax, panel in zip(axes, panels):
        _draw_panel(ax, panel, colors, figure["ylabel"], per_key)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if per_key:  # a panel per benchmark: one legend of the runs for the whole figure
        handles = {}
        for ax in axes[: len(panels)]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small")
    fig.suptitle(figure["title"])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(path, buf.getvalue())
    return path


def plot(json_path: Path, out_dir: Path) -> list[Path]:
    """Draw every figure of a ``curves.json`` into `out_dir`; returns the PNGs written.

    Raises:
        ConfigError: matplotlib is missing, or the JSON is not a curves description.
    """
    try:
        description = json.loads(Path(json_path).read_text(encoding="utf-8"))
        figures = description["figures"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{json_path}: not a curves description ({exc}); rerun analyze curves") from None
    _figure(1, 1)  # fail with the install hint before drawing anything
    out_dir.mkdir(parents=True, exist_ok=True)
    return [draw_figure(figure, out_dir / Path(figure["file"]).name) for figure in figures]
