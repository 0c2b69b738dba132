"""`run_weights`: open and cross-check the checkpoints, stream every selected tensor, write the outputs.

Outputs (all written atomically; the partial file is removed only after every output is in place):
``weights.json`` (everything), ``table5.csv`` / ``table5.json`` (pairs x weight types), ``layers.csv``
(per-layer curves), and the figures when matplotlib is installed (see `m2rl_slime.analyze.weights.plot`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ... import __version__
from ...errors import ConfigError
from ...merge.io import FLOAT_CODES, Checkpoint, write_atomic
from ...merge.plan import check_experts
from .config import WeightsOptions, dtype_statement, parse_layers
from .engine import Inputs, PartialFile, Streamer, Target, run_id
from .names import classify
from .plot import Drawers, try_plot
from .report import LAYER_FIELDS, group_stats, layer_rows, section, table5

log = logging.getLogger(__name__)
WEIGHTS_JSON = "weights.json"
RULE = "|w_rl - w_sft| > eta * max(|w_rl|, |w_sft|)"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# from this much input on, the figures are drawn by child processes started at the beginning (their
# imports hide behind the reading); smaller runs draw them here, after the numbers
DRAWERS_FROM_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class WeightsReport:
    """What `run_weights` wrote: the parsed ``weights.json``, the files, and the NaN/Inf count."""

    out: Path
    weights: dict[str, Any]
    files: tuple[Path, ...]
    figures: tuple[Path, ...]
    seconds: float
    nonfinite: int


def _check_names(experts: Sequence[tuple[str, str]]) -> None:
    if not experts:
        raise ConfigError("no experts: give at least one --expert NAME=DIR")
    names = [n for n, _ in experts]
    for name in names:
        if not _NAME.match(name):
            raise ConfigError(f"expert name {name!r} must match {_NAME.pattern}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"expert name {dup[0]!r} is used twice")


def open_inputs(base: str, experts: Sequence[tuple[str, str]], options: WeightsOptions) -> Inputs:
    """Open the checkpoints, refuse mismatches (the merge's checks) and select the tensors to analyse.

    Raises:
        ConfigError: unreadable checkpoint, mismatching expert, bad layer selection.
    """
    _check_names(experts)
    base_ck = Checkpoint(base)
    opened = {name: Checkpoint(path) for name, path in experts}
    names, _ = check_experts(base_ck, opened)
    names = [n for n in names if base_ck.tensors[n].dtype in FLOAT_CODES and base_ck.tensors[n].numel > 0]
    kinds = {n: classify(n) for n in names}
    present = sorted({k.layer for k in kinds.values() if k.layer is not None})
    chosen = parse_layers(options.layers, present[-1] + 1 if present else 0)
    layers = tuple(present) if chosen is None else tuple(x for x in chosen if x in present)
    other = options.other if options.other is not None else chosen is None
    if options.table_layer is not None:
        if options.table_layer not in layers:
            raise ConfigError(f"--table-layer {options.table_layer} is not among the analysed layers {list(layers)}")
        table_layers: tuple[int, ...] = (options.table_layer,)
    else:
        table_layers = (17,) if 17 in layers else layers
    targets = []
    for n in names:
        kind = kinds[n]
        if (kind.layer is None and not other) or (kind.layer is not None and kind.layer not in layers):
            continue
        projected = kind.projection and (
            options.project == "all" or (options.project == "table" and kind.layer in table_layers)
        )
        targets.append(Target(n, kind, base_ck.tensors[n], projected))
    if not targets:
        raise ConfigError(f"{base}: no floating-point tensors selected (--layers {options.layers})")
    return Inputs(base_ck, tuple(opened.items()), tuple(targets), layers, table_layers, other)


def _scope(layers: Sequence[int]) -> str:
    if len(layers) == 1:
        return f"layer {layers[0]}"
    return f"layers {', '.join(map(str, layers))} pooled"


def build_weights(inputs: Inputs, options: WeightsOptions, records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The content of ``weights.json`` from every tensor's partial result."""
    names = inputs.names
    recs = [records[t.name] for t in inputs.targets]
    by_layer: dict[int, list[Mapping[str, Any]]] = {}
    for r in recs:
        if r["layer"] is not None:
            by_layer.setdefault(r["layer"], []).append(r)
    model = [r for r in recs if r["layer"] is None]
    table = [r for r in recs if r["layer"] in inputs.table_layers]
    bad = {r["name"]: dict(zip(("base", *names), r["nonfinite"])) for r in recs if any(r["nonfinite"])}
    return {
        "analysis": "weights",
        "version": __version__,
        "rule": RULE,
        "inputs": {"base": str(inputs.base.path), "experts": {n: str(c.path) for n, c in inputs.experts}},
        "experts": list(names),
        "pairs": [[names[i], names[j]] for i, j in inputs.pairs],
        "options": {k: v for k, v in asdict(options).items() if k not in ("progress", "resume", "overwrite")},
        "dtypes": {d: dtype_statement(d, options.eta) for d in sorted({r["dtype"] for r in recs})},
        "layers_analysed": list(inputs.layers),
        "table": {
            "scope": _scope(inputs.table_layers),
            "layers": list(inputs.table_layers),
            "groups": section(table, names),
        },
        "layers": {str(layer): section(by_layer[layer], names) for layer in sorted(by_layer)},
        "model": {r["name"]: group_stats([r], names) for r in model},
        "nonfinite": {"elements": sum(sum(v.values()) for v in bad.values()), "tensors": bad},
    }


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
    return buf.getvalue().encode()


def write_outputs(out: Path, weights: Mapping[str, Any]) -> list[Path]:
    """Write table5.csv/json, layers.csv and weights.json (each atomically, weights.json last)."""
    t5 = table5(weights)
    rows = [{"a": r["a"], "b": r["b"], "metric": r["metric"], **r["values"]} for r in t5["rows"]]
    files = {
        "table5.csv": _csv(rows, ["a", "b", "metric", *t5["columns"]]),
        "table5.json": json.dumps(t5, indent=1).encode(),
        "layers.csv": _csv(layer_rows(weights), ["layer", "group", "a", "b", "density_a", "density_b", *LAYER_FIELDS]),
        WEIGHTS_JSON: json.dumps(weights, separators=(",", ":")).encode(),  # the C encoder: indent is 10x slower
    }
    for name, data in files.items():
        write_atomic(out / name, data)
    return [out / n for n in files]


def _prepare_out(out: Path, options: WeightsOptions) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if (out / WEIGHTS_JSON).exists() and not options.overwrite and not options.resume:
        raise ConfigError(
            f"{out} already holds a weights analysis ({WEIGHTS_JSON}); add --overwrite or pick another --out"
        )
    out.mkdir(parents=True, exist_ok=True)


def run_weights(
    base: str,
    experts: Sequence[tuple[str, str]],
    out_dir: str | Path,
    options: WeightsOptions | None = None,
    figures: bool = True,
) -> WeightsReport:
    """Analyse the weight shifts of `experts` relative to `base` and write the outputs to `out_dir`.

    Args:
        base: The SFT checkpoint directory (HF safetensors).
        experts: (name, directory) of each RL expert, in report order.
        out_dir: Output directory (created; other analyses' files in it are left alone).
        options: How to run it (defaults: every layer, eta 1e-3, projections on the Table 5 layer).
        figures: Also draw the figures when matplotlib is installed.

    Returns:
        A WeightsReport; its `weights` is what ``weights.json`` holds.

    Raises:
        ConfigError: bad options, unreadable or mismatching checkpoints, an output directory in the way.
    """
    options = options or WeightsOptions()
    options.validate()
    if options.kernel == "auto" and not options.native():
        log.warning(
            "the native block kernel was not built (no C compiler at install?): using the numpy kernel, "
            "same numbers, about 3x the CPU; reinstall with gcc available to build it"
        )
    t0 = time.perf_counter()
    inputs = open_inputs(base, experts, options)
    out = Path(out_dir)
    _prepare_out(out, options)
    with contextlib.ExitStack() as stack:
        drawers = None
        if figures and inputs.read_bytes() >= DRAWERS_FROM_BYTES:
            drawers = stack.enter_context(Drawers(min(2, options.compute_threads())))
        partial = PartialFile(out, run_id(inputs, options), options.resume)
        try:
            reused = len(partial.records)
            todo = [t for t in inputs.targets if t.name not in partial.records]
            Streamer(inputs, options).run(todo, partial.add)
        finally:
            partial.close()
        weights = build_weights(inputs, options, partial.records)
        seconds = time.perf_counter() - t0
        weights["run"] = {
            "seconds": round(seconds, 3),
            "threads": options.compute_threads(),
            "kernel": "native" if options.native() else "numpy",
            "resumed_tensors": reused,
        }
        files = write_outputs(out, weights)
        drawn: list[Path] = []
        if drawers is not None:
            drawn = drawers.draw(out / WEIGHTS_JSON, out)
        elif figures:
            drawn = try_plot(out / WEIGHTS_JSON, out)
    partial.remove()
    return WeightsReport(out, weights, tuple(files), tuple(drawn), seconds, weights["nonfinite"]["elements"])
