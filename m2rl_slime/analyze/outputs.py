"""Result files of the behaviour analyses (JSON + CSV, written atomically) and the figure canvas they share.

JSON never holds NaN or infinity (not JSON): an undefined number is ``null`` next to a ``reason`` saying
why. CSV writes it as an empty cell. Figures are drawn with matplotlib's object API on an Agg canvas (no
pyplot, no global state); matplotlib is the optional extra ``[analysis]`` and is imported only to draw.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..eval.samples import write_atomic, write_json

HINT = 'pip install -e ".[analysis]" (or pip install matplotlib), then: python -m m2rl_slime.analyze plot DIR'


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (recursively through dicts and lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def save_json(path: Path, value: Any) -> Path:
    write_json(path, finite(value))
    return path


def save_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV (floats with 6 significant digits, None as an empty cell) atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in finite(list(row))])
    write_atomic(path, [buf.getvalue()])
    return path


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas.

    Raises:
        ConfigError: matplotlib is not installed (the message says how to get it).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(f"figures need matplotlib, which is not installed: {HINT}") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: Path) -> Path:
    from ..merge.io import write_atomic as write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes(path, buf.getvalue())
    return path


def draw_figures(plot: Any, json_path: Path, logger: Any) -> list[Path]:
    """Run a plotter after an analysis; without matplotlib, log one line saying how to get the figures."""
    try:
        return list(plot(json_path, json_path.parent))
    except ConfigError as exc:
        if "matplotlib" not in str(exc):
            raise
        logger.warning("numbers written to %s; no figures: %s", json_path, exc)
        return []
