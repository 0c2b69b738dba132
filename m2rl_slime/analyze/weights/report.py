"""From per-tensor partial results to the numbers of ``weights.json``, Table 5 and the per-layer curves.

A *group* pools tensors (one tensor, one weight type over several layers, or all attention / FFN
projections of a layer). Pooling sums counts and shift sums, so a pooled Jaccard is |∧|/|∨| over the
union of the tensors and a pooled cosine is the cosine of the concatenated vectors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .names import COLUMNS, GROUPS

PAPER_RANDOM = 0.3 / (2 - 0.3)  # Table 5's "random" Jaccard: two independent masks of density 0.30
TABLE_METRICS = (
    "density_a",
    "density_b",
    "jaccard",
    "jaccard_indep",
    "jaccard_perm",
    "cosine",
    "cosine_projected",
    "cosine_projected_sd",
)
LAYER_FIELDS = ("jaccard", "jaccard_indep", "jaccard_perm", "cosine", "cosine_full", "cosine_projected")


def _mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _cos(dot: float, na: float, nb: float) -> float | None:
    return dot / math.sqrt(na * nb) if na > 0 and nb > 0 else None


def _sum(recs: Sequence[Mapping[str, Any]], key: str) -> Any:
    import numpy as np

    return sum((np.asarray(r[key]) for r in recs[1:]), np.asarray(recs[0][key]))


def _pair(recs: Sequence[Mapping[str, Any]], s: Mapping[str, Any], i: int, j: int, q: int) -> dict[str, Any]:
    ci, cj, n = int(s["changed"][i]), int(s["changed"][j]), s["numel"]
    inter = int(s["inter"][i][j])
    union = ci + cj - inter
    # independent masks of the observed densities, tensor by tensor: E|∧| / E|∨|
    e_inter = math.fsum(r["changed"][i] * r["changed"][j] / r["numel"] for r in recs)
    # every 65536-element group rotated uniformly at random: the exact expectation, then the drawn ones
    e_perm = float(s["perm_expected"][i][j])
    perm = [_ratio(int(p[i][j]), ci + cj - int(p[i][j])) for p in s["perm"]]
    perm_sd = _mean_sd([p for p in perm if p is not None])[1] if len(perm) > 1 else None
    dot, sa, sb = float(s["dot"][i][j]), float(s["sq"][i][j]), float(s["sq"][j][i])
    cosine = _cos(dot, sa, sb)
    out = {
        "density_a": ci / n,
        "density_b": cj / n,
        "intersection": inter,
        "union": union,
        "jaccard": _ratio(inter, union),
        "jaccard_indep": _ratio(e_inter, ci + cj - e_inter),
        "jaccard_perm": _ratio(e_perm, ci + cj - e_perm),
        "jaccard_perm_sd": perm_sd,
        "jaccard_perm_draws": perm,
        "cosine": cosine,
        "cosine_full": _cos(dot, float(s["sq"][i][i]), float(s["sq"][j][j])),
        "norm_a_on_overlap": math.sqrt(sa),
        "norm_b_on_overlap": math.sqrt(sb),
    }
    out.update(_projected(recs, q, cosine))
    return out


def _projected(recs: Sequence[Mapping[str, Any]], q: int, exact: float | None) -> dict[str, Any]:
    if not recs or any(r["proj"] is None for r in recs):
        return {"cosine_projected": None, "cosine_projected_sd": None}
    seeds = len(recs[0]["proj"]["y"])
    per_seed = []
    for s in range(seeds):
        dot = math.fsum(r["proj"]["y"][s][q][0] for r in recs)
        na = math.fsum(r["proj"]["y"][s][q][1] for r in recs)
        nb = math.fsum(r["proj"]["y"][s][q][2] for r in recs)
        per_seed.append(_cos(dot, na, nb))
    mean, sd = _mean_sd([c for c in per_seed if c is not None])
    k = sum(r["proj"]["k"] for r in recs)
    jl = math.sqrt(max(0.0, 1 - exact**2) / k) if exact is not None else None
    return {
        "cosine_projected": mean,
        "cosine_projected_sd": sd,
        "cosine_projected_seeds": per_seed,
        "projection_rows": k,
        "jl_sd": jl,
    }


def group_stats(recs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Densities and every pair's overlap and shift similarity, pooled over `recs`."""
    s = {key: _sum(recs, key) for key in ("changed", "nonfinite", "inter", "dot", "sq", "perm", "perm_expected")}
    s["numel"] = sum(r["numel"] for r in recs)
    pairs = {}
    q = 0
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            pairs[f"{names[i]}|{names[j]}"] = {"a": names[i], "b": names[j], **_pair(recs, s, i, j, q)}
            q += 1
    return {
        "tensors": len(recs),
        "numel": s["numel"],
        "dtypes": sorted({r["dtype"] for r in recs}),
        "changed": dict(zip(names, (int(c) for c in s["changed"]))),
        "density": {n: int(c) / s["numel"] for n, c in zip(names, s["changed"])},
        "shift_norm": {n: math.sqrt(float(s["sq"][i][i])) for i, n in enumerate(names)},
        "pairs": pairs,
    }


def _with_type_means(pooled: dict[str, Any], parts: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Add, per pair, the mean over weight types of the per-type Jaccard and cosines."""
    for key, pair in pooled["pairs"].items():
        means = {}
        for metric in ("jaccard", "cosine", "cosine_projected"):
            values = [p["pairs"][key][metric] for p in parts.values() if p["pairs"][key][metric] is not None]
            means[metric] = math.fsum(values) / len(values) if values else None
        pair["mean_of_types"] = means
    pooled["types"] = sorted(parts)
    return pooled


def section(recs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Per weight type, the attention/FFN pools and the other in-layer tensors, for a set of records."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for r in recs:
        by_kind.setdefault(r["kind"], []).append(r)
    out: dict[str, Any] = {k: group_stats(by_kind[k], names) for k in COLUMNS if k in by_kind}
    for gname, kinds in GROUPS.items():
        members = [r for k in kinds for r in by_kind.get(k, [])]
        if members:
            out[gname] = _with_type_means(group_stats(members, names), {k: out[k] for k in kinds if k in out})
    other = {k: group_stats(v, names) for k, v in by_kind.items() if k not in COLUMNS}
    if other:
        out["other"] = other
    return out


def table5(weights: Mapping[str, Any]) -> dict[str, Any]:
    """Table 5's layout: one row per (pair, metric), one column per weight type plus attention and FFN."""
    groups = weights["table"]["groups"]
    columns = [c for c in (*COLUMNS, "attention", "ffn") if c in groups]
    rows = []
    for a, b in weights["pairs"]:
        key = f"{a}|{b}"
        for metric in TABLE_METRICS:
            rows.append(
                {"a": a, "b": b, "metric": metric, "values": {c: groups[c]["pairs"][key][metric] for c in columns}}
            )
    return {
        "scope": weights["table"]["scope"],
        "layers": weights["table"]["layers"],
        "dtypes": {d: v["statement"] for d, v in weights["dtypes"].items()},
        "columns": columns,
        "rows": rows,
        "reference": {
            "paper_random_jaccard": PAPER_RANDOM,
            "note": (
                "Table 5's random reference (0.18) assumes density 0.30 for both masks; jaccard_indep is the "
                "reference for the observed densities, jaccard_perm a permutation of the observed masks"
            ),
        },
    }


def layer_rows(weights: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-layer curves, one row per (layer, group, pair)."""
    rows = []
    for layer, groups in weights["layers"].items():
        for gname in (*COLUMNS, "attention", "ffn"):
            if gname not in groups:
                continue
            for pair in groups[gname]["pairs"].values():
                row = {"layer": int(layer), "group": gname, "a": pair["a"], "b": pair["b"]}
                row.update({"density_a": pair["density_a"], "density_b": pair["density_b"]})
                row.update({f: pair[f] for f in LAYER_FIELDS})
                rows.append(row)
    return rows
