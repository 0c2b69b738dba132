"""Which metrics make which figure, and the figures' description (the data `plot` draws, as JSON).

Four figures, each chosen by metric-name patterns (regular expressions whose ``key`` group names a line or
a panel), tried in order per run; a run uses the first pattern that matches any of its metrics:

* ``fig9_reward`` (paper Fig. 9): one panel per run, one line per domain: our hook's
  ``rollout/m2rl/<domain>/reward_mean``, else slime's batch mean ``rollout/raw_reward`` (line ``all``);
* ``fig2_benchmarks`` (paper Fig. 2): one panel per benchmark, one line per run: slime's eval accuracy
  ``eval/<set>`` (not ``eval/step``, ``eval/<set>-truncated_ratio``, ``eval/<set>-pass@k``);
* ``truncation`` and ``response_len``: like Fig. 9, from ``rollout/m2rl/<domain>/truncated_ratio`` and
  ``.../response_len_mean``, else slime's ``rollout/truncated_ratio`` and ``rollout/response_len/mean``.

What a run lacks is reported (`missing`, one entry per run and metric); no panel is ever drawn empty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ConfigError
from .series import Series, ema
from .sources import RunData

ALL = "all"  # the line of a run-wide (not per-domain) fallback metric


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric-name pattern; `key` group -> line/panel name, else `label`, else the whole name."""

    pattern: str
    display: str  # how the pattern is named in messages, e.g. rollout/m2rl/<domain>/reward_mean
    label: str | None = None
    exclude: str | None = None

    def match(self, tag: str) -> str | None:
        m = re.search(self.pattern, tag)
        if m is None or (self.exclude and re.search(self.exclude, tag)):
            return None
        if self.label is not None:
            return self.label
        return m.groupdict().get("key") or tag


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """One figure: panels per run (lines per key) or per key (lines per run)."""

    id: str
    title: str
    ylabel: str
    layout: Literal["per_run", "per_key"]
    metrics: tuple[Metric, ...]
    eval: bool = False  # smoothed with the eval weight
    keys: tuple[str, ...] = field(default=())  # per_key: the panels wanted, in order (default: all found)


def _m(pattern: str, display: str, label: str | None = None, exclude: str | None = None) -> Metric:
    return Metric(pattern, display, label, exclude)


DEFAULT_FIGURES: dict[str, FigureSpec] = {
    "fig9_reward": FigureSpec(
        "fig9_reward",
        "Training reward per domain",
        "reward",
        "per_run",
        (
            _m(r"^rollout/m2rl/(?P<key>[^/]+)/reward_mean$", "rollout/m2rl/<domain>/reward_mean"),
            _m(r"^rollout/raw_reward$", "rollout/raw_reward", ALL),
        ),
    ),
    "fig2_benchmarks": FigureSpec(
        "fig2_benchmarks",
        "Benchmark accuracy during RL",
        "accuracy",
        "per_key",
        (_m(r"^eval/(?P<key>[^/]+)$", "eval/<set>", exclude=r"^eval/step$|-truncated_ratio$|-pass@\d+$"),),
        eval=True,
    ),
    "truncation": FigureSpec(
        "truncation",
        "Truncation ratio per domain",
        "truncated ratio",
        "per_run",
        (
            _m(r"^rollout/m2rl/(?P<key>[^/]+)/truncated_ratio$", "rollout/m2rl/<domain>/truncated_ratio"),
            _m(r"^rollout/truncated_ratio$", "rollout/truncated_ratio", ALL),
        ),
    ),
    "response_len": FigureSpec(
        "response_len",
        "Response length per domain",
        "tokens",
        "per_run",
        (
            _m(r"^rollout/m2rl/(?P<key>[^/]+)/response_len_mean$", "rollout/m2rl/<domain>/response_len_mean"),
            _m(r"^rollout/response_len/mean$", "rollout/response_len/mean", ALL),
        ),
    ),
}


def select(run: RunData, spec: FigureSpec) -> tuple[Metric | None, dict[str, str]]:
    """The first of `spec.metrics` matching any metric of `run`, and key -> tag for its matches."""
    for metric in spec.metrics:
        found: dict[str, str] = {}
        for tag in run.scalars:
            key = metric.match(tag)
            if key is not None:
                found.setdefault(key, tag)
        if found:
            return metric, found
    return None, {}


def _key_order(key: str) -> tuple[int, str]:
    from ...rewards.registry import DOMAINS

    if key == ALL:
        return len(DOMAINS) + 1, key
    return (DOMAINS.index(key), key) if key in DOMAINS else (len(DOMAINS), key)


def gpu_label(run: RunData) -> str:
    """``name (123 GPU-h)``, ``name (>= 4.5 GPU-h, running)`` or just the name without a run record."""
    if run.gpu is None:
        return run.name
    hours = run.gpu.hours
    text = f"{hours:,.0f}" if hours >= 100 else f"{hours:.1f}"
    return f"{run.name} (>= {text} GPU-h, running)" if run.gpu.partial else f"{run.name} ({text} GPU-h)"


def _finite(values: Sequence[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def _line(run: RunData, key: str, tag: str, label: str, weight: float) -> dict[str, Any]:
    series: Series = run.scalars[tag]
    return {
        "label": label,
        "run": run.name,
        "key": key,
        "tag": tag,
        "smoothing": weight,
        "steps": list(series.steps),
        "values": _finite(series.values),
        "smoothed": _finite(ema(series.values, weight)),
    }


def _missing(figure: str, run: str | None, metric: str, message: str) -> dict[str, Any]:
    return {"figure": figure, "run": run, "metric": metric, "message": message}


def _per_run(spec: FigureSpec, runs: Sequence[RunData], weight: float, out: dict[str, list]) -> list[dict]:
    panels = []
    wanted = " or ".join(m.display for m in spec.metrics)
    for run in runs:
        metric, found = select(run, spec)
        if metric is None:
            msg = f"{spec.id}: run {run.name} has no {wanted}: no panel"
            out["missing"].append(_missing(spec.id, run.name, wanted, msg))
            continue
        if metric is not spec.metrics[0]:
            first = spec.metrics[0].display
            out["notes"].append(f"{spec.id}: run {run.name} has no {first}; drew {metric.display} as '{ALL}'")
        keys = sorted(found, key=_key_order)
        lines = [_line(run, k, found[k], k, weight) for k in keys]
        panels.append({"title": run.name, "legend_title": gpu_label(run), "run": run.name, "lines": lines})
    return panels


def _per_key(spec: FigureSpec, runs: Sequence[RunData], weight: float, out: dict[str, list]) -> list[dict]:
    found = {run.name: select(run, spec)[1] for run in runs}
    keys = list(spec.keys) or sorted({k for per_run in found.values() for k in per_run})
    display = spec.metrics[0].display
    panels = []
    for key in keys:
        name = display.replace("<set>", key) if "<set>" in display else key
        have = [run for run in runs if key in found[run.name]]
        if not have:
            out["missing"].append(_missing(spec.id, None, name, f"{spec.id}: no run has {name}: no panel"))
            continue
        for run in runs:
            if key not in found[run.name]:
                out["missing"].append(_missing(spec.id, run.name, name, f"{spec.id}: run {run.name} has no {name}"))
        lines = [_line(run, key, found[run.name][key], gpu_label(run), weight) for run in have]
        panels.append({"title": key, "legend_title": None, "key": key, "lines": lines})
    if not keys:
        msg = f"{spec.id}: no run has any {display}: figure not drawn"
        out["missing"].append(_missing(spec.id, None, display, msg))
    return panels


def describe(
    runs: Sequence[RunData],
    specs: Mapping[str, FigureSpec] | None = None,
    smoothing: float = 0.6,
    eval_smoothing: float = 0.0,
) -> dict[str, Any]:
    """The figures' description: runs, figures (panels, lines with raw and smoothed values), missing, notes.

    Raises:
        ConfigError: a smoothing weight outside [0, 1), or no figure has a single panel.
    """
    for name, weight in (("--smoothing", smoothing), ("--eval-smoothing", eval_smoothing)):
        if not 0.0 <= weight < 1.0:
            raise ConfigError(f"{name} {weight}: a smoothing weight must be in [0, 1) (TensorBoard's slider)")
    out: dict[str, list] = {"missing": [], "notes": []}
    figures = []
    for spec in (specs or DEFAULT_FIGURES).values():
        weight = eval_smoothing if spec.eval else smoothing
        build = _per_key if spec.layout == "per_key" else _per_run
        panels = build(spec, runs, weight, out)
        if panels:
            figures.append(
                {
                    "id": spec.id,
                    "title": spec.title,
                    "ylabel": spec.ylabel,
                    "layout": spec.layout,
                    "file": f"{spec.id}.png",
                    "panels": panels,
                }
            )
    if not figures:
        raise ConfigError("none of the runs has a metric of any figure; see what they have with --list")
    return {
        "version": 1,
        "x": "rollout step (slime's rollout id: TensorBoard's step, wandb's rollout/step or eval/step)",
        "smoothing": {"rollout": smoothing, "eval": eval_smoothing, "method": "ema, debiased (TensorBoard)"},
        "runs": [run_summary(run) for run in runs],
        "figures": figures,
        "missing": out["missing"],
        "notes": out["notes"],
    }


def run_summary(run: RunData) -> dict[str, Any]:
    """What the JSON and runs.csv say about a run."""
    return {
        "name": run.name,
        "kind": run.kind,
        "source": run.source,
        "files": list(run.files),
        "metrics": len(run.scalars),
        "last_step": run.last_step,
        "gpu_hours": None if run.gpu is None else round(run.gpu.hours, 3),
        "gpu_hours_partial": None if run.gpu is None else run.gpu.partial,
        "record": None if run.record is None or run.record.path is None else str(run.record.path),
        "warnings": list(run.warnings),
    }
