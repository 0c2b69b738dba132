"""Figures of the weight analysis, drawn from ``weights.json`` alone (matplotlib, the ``[analysis]`` extra).

* ``fig3_cosine.png``: Fig. 3, lower-triangle heat maps of the exact shift cosine on the overlap
  (attention and FFN pools of the Table 5 layer; the value in every cell);
* ``fig3_cosine_projected.png``: the same for the projected (SRHT) cosine, mean over seeds, when computed;
* ``fig3_jaccard.png``: the Jaccard index, with the independent-mask reference in brackets;
* ``layers.png``: per-layer curves of the Jaccard (with its references) and the exact cosine.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state) and written atomically.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...merge.io import write_atomic

log = logging.getLogger(__name__)
HINT = 'pip install -e ".[analysis]" (or pip install matplotlib), then: python -m m2rl_slime.analyze plot DIR'
_PANELS = (("attention", "attention (q, k, v, o)"), ("ffn", "FFN (gate, up, down)"))


class MatplotlibMissing(ConfigError):
    """matplotlib cannot be imported."""


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissing(f"figures need matplotlib, which is not installed: {HINT}") from None
    fig = Figure(figsize=(width, height), dpi=100)  # placed by hand: a layout engine doubles the drawing time
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(path, buf.getvalue())
    return path


def _matrix(group: Mapping[str, Any], names: list[str], metric: str) -> list[list[float | None]]:
    e = len(names)
    m: list[list[float | None]] = [[None] * e for _ in range(e)]
    for pair in group["pairs"].values():
        i, j = names.index(pair["a"]), names.index(pair["b"])
        m[max(i, j)][min(i, j)] = pair[metric]
    return m


def _heatmaps(weights: Mapping[str, Any], metric: str, title: str, path: Path, note: str | None = None) -> Path:
    import numpy as np

    names = list(weights["experts"])
    groups = weights["table"]["groups"]
    panels = [(key, label) for key, label in _PANELS if key in groups]
    fig = _figure(4.2 * len(panels) + 0.8, 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    jaccard = metric == "jaccard"
    for ax, (key, label) in zip(axes, panels):
        m = _matrix(groups[key], names, metric)
        data = np.array([[np.nan if v is None else v for v in row] for row in m], dtype=float)
        finite = data[np.isfinite(data)]
        if jaccard:
            lo, hi, cmap = 0.0, 1.0, "viridis"
        else:
            top = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-6)
            lo, hi, cmap = -top, top, "RdBu_r"
        im = ax.imshow(np.ma.masked_invalid(data), vmin=lo, vmax=hi, cmap=cmap)
        ref = _matrix(groups[key], names, "jaccard_indep") if jaccard else None
        for i in range(len(names)):
            for j in range(i):
                if m[i][j] is None:
                    continue
                text = f"{m[i][j]:.2f}" + (f"\n({ref[i][j]:.2f})" if ref and ref[i][j] is not None else "")
                dark = m[i][j] < 0.6 if jaccard else abs(m[i][j]) > 0.6 * hi  # keep the text readable
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_title(label, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{title}, {weights['table']['scope']}" + (f"\n{note}" if note else ""), fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.2, top=0.82, wspace=0.3)
    return _save(fig, path)


def _layer_curves(weights: Mapping[str, Any], path: Path) -> Path:
    fig = _figure(10, 6.5)  # first: it says how to install matplotlib when it is missing
    from matplotlib.ticker import MaxNLocator

    layers = sorted(int(x) for x in weights["layers"])
    axes = fig.subplots(2, 2, sharex=True, squeeze=False)
    for col, (key, label) in enumerate(_PANELS):
        for row, metric in enumerate(("jaccard", "cosine")):
            ax = axes[row][col]
            xs = [x for x in layers if key in weights["layers"][str(x)]]
            if not xs:
                ax.set_visible(False)
                continue
            pairs = weights["layers"][str(xs[0])][key]["pairs"]
            for pkey, pair in pairs.items():
                ys = [weights["layers"][str(x)][key]["pairs"][pkey][metric] for x in xs]
                ys = [math.nan if y is None else y for y in ys]
                ax.plot(xs, ys, lw=1, marker="." if len(xs) < 40 else None, label=f"{pair['a']}-{pair['b']}")
            if metric == "jaccard":
                for ref, style in (("jaccard_indep", "--"), ("jaccard_perm", ":")):
                    mean = [_pair_mean(weights["layers"][str(x)][key]["pairs"], ref) for x in xs]
                    ax.plot(xs, mean, "k" + style, lw=1.5, label=f"{ref} (mean over pairs)")
            ax.set_title(f"{label}: {metric}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if row == 1:
                ax.set_xlabel("layer (0-based HF index)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=7)
    fig.subplots_adjust(left=0.07, right=0.78, bottom=0.08, top=0.95, hspace=0.25, wspace=0.22)
    return _save(fig, path)


def _pair_mean(pairs: Mapping[str, Any], metric: str) -> float:
    values = [p[metric] for p in pairs.values() if p[metric] is not None]
    return math.fsum(values) / len(values) if values else math.nan


def _load(path: Path) -> dict[str, Any]:
    try:
        weights = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    if not isinstance(weights, dict) or weights.get("analysis") != "weights":
        raise ConfigError(f"{path}: not the output of analyze weights")
    return weights


def _jobs(weights: Mapping[str, Any], out: Path) -> list[Callable[[], Path]]:
    """One callable per figure, the slowest first (the layer curves take about two heat maps)."""
    jobs: list[Callable[[], Path]] = []
    if len(weights["experts"]) < 2:
        return jobs
    if weights["layers"]:
        jobs.append(lambda: _layer_curves(weights, out / "layers.png"))
    jobs.append(lambda: _heatmaps(weights, "cosine", "exact shift cosine on the overlap", out / "fig3_cosine.png"))
    pairs = next(iter(weights["table"]["groups"].values()))["pairs"]
    if any(p["cosine_projected"] is not None for p in pairs.values()):
        k, seeds = weights["options"]["proj_dim"], weights["options"]["seeds"]
        title = f"projected cosine (SRHT to {k} rows per tensor, mean of {seeds} seeds)"
        jobs.append(lambda: _heatmaps(weights, "cosine_projected", title, out / "fig3_cosine_projected.png"))
    note = "in brackets: independent masks of the same densities"
    jobs.append(lambda: _heatmaps(weights, "jaccard", "Jaccard of the changed masks", out / "fig3_jaccard.png", note))
    return jobs


def plot(path: Path, out: Path, part: int = 0, parts: int = 1) -> list[Path]:
    """Draw every figure of a ``weights.json`` into `out` (or every `parts`-th one from `part`); returns the
    files written.

    Raises:
        ConfigError: matplotlib is missing, or the file is not a weights analysis.
    """
    return [job() for job in _jobs(_load(path), Path(out))[part::parts]]


def _installed() -> bool:
    """Whether matplotlib can be imported (found on the path, without paying for the import)."""
    return importlib.util.find_spec("matplotlib") is not None


def try_plot(path: Path, out: Path) -> list[Path]:
    """`plot`, or one log line saying how to get the figures when matplotlib is not installed."""
    if not _installed():
        log.warning("figures skipped (matplotlib is not installed): %s", HINT)
        return []
    try:
        return plot(path, out)
    except MatplotlibMissing:  # found on the path, but it does not import
        log.warning("figures skipped (matplotlib is not installed): %s", HINT)
        return []


_CHILD = "import sys; from m2rl_slime.analyze.weights.plot import _child; sys.exit(_child())"
_DRAW_TIMEOUT = 600.0


def _child() -> int:
    """A drawer process: import matplotlib now, then draw its share of the figures of the weights.json named
    on stdin (one JSON line [path, out, part, parts]); reply one JSON line {"files": [...]} or {"error": ...}."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the children
    os.nice(10)  # while the analysis runs, take only idle CPU
    try:
        _figure(1, 1)  # the imports, and matplotlib's first-figure setup
    except MatplotlibMissing:  # the parent finds out when it draws in its place
        return 1
    line = sys.stdin.readline()
    if not line:  # the parent gave up (or died): nothing to draw
        return 0
    path, out, part, parts = json.loads(line)
    try:
        files = [str(f) for f in plot(Path(path), Path(out), part, parts)]
    except ConfigError as exc:
        reply: dict[str, Any] = {"error": str(exc)}
    else:
        reply = {"files": files}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return 0


class Drawers:
    """Child processes that import matplotlib while the analysis runs and then draw the figures in parallel.

    Importing matplotlib and drawing the four figures take a second or more of one core after the numbers
    are known; started at the beginning (at nice 10, on CPU the analysis leaves idle), the children only draw
    at the end, split between them. Any failure to start or to answer falls back to drawing here. Use as a
    context manager: the children never outlive it.
    """

    def __init__(self, parts: int = 2, python: str | None = None):
        self.parts = max(1, parts)
        self._procs: list[subprocess.Popen[bytes]] = []
        if not _installed():
            self.available = False
            return
        self.available = True
        root = str(Path(__file__).resolve().parents[3])  # the directory holding the m2rl_slime package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        try:
            for _ in range(self.parts):
                self._procs.append(
                    subprocess.Popen(
                        [python or sys.executable, "-c", _CHILD],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=env,
                        close_fds=True,
                    )
                )
        except OSError as exc:
            log.info("figure drawers did not start (%s); drawing in this process", exc)
            self.close()

    def __enter__(self) -> Drawers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def draw(self, path: Path, out: Path) -> list[Path]:
        """Every figure of `path` in `out` (`try_plot` semantics when matplotlib is missing).

        Raises:
            ConfigError: the file is not a weights analysis.
        """
        if not self.available:
            return try_plot(path, out)
        if not self._procs:
            return plot(path, out)
        procs = self._procs
        sent: list[bool] = []
        for part, proc in enumerate(procs):
            try:
                assert proc.stdin is not None
                proc.stdin.write((json.dumps([str(path), str(out), part, len(procs)]) + "\n").encode())
                proc.stdin.flush()  # every child starts drawing now; communicate() closes stdin
                sent.append(True)
            except OSError:  # it died already
                sent.append(False)
        files: list[Path] = []
        missing: list[int] = []
        error = None
        for part, proc in enumerate(procs):
            reply: dict[str, Any] = {}
            if sent[part]:
                try:
                    answer, _ = proc.communicate(timeout=_DRAW_TIMEOUT)
                    reply = json.loads(answer or b"{}")
                except (subprocess.TimeoutExpired, ValueError, OSError) as exc:
                    log.info("figure drawer %d failed (%s); drawing its figures here", part, exc)
            if isinstance(reply, dict) and "error" in reply:
                error = str(reply["error"])
            elif isinstance(reply, dict) and isinstance(reply.get("files"), list):
                files += [Path(f) for f in reply["files"]]
            else:
                missing.append(part)
        self.close()
        if error is not None:
            raise ConfigError(error)
        try:
            for part in missing:
                files += plot(path, out, part, len(procs))
        except MatplotlibMissing:
            log.warning("figures skipped (matplotlib is not installed): %s", HINT)
        return files

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # unflushed input to a dead child
                        pipe.close()
        self._procs = []
