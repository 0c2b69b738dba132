"""Gain consistency (Fig. 5): do a multi-domain model's per-item gains over SFT line up with the experts'?

For benchmark t and model m, with a_m(i) the mean reward of item i over its K samples (``items.jsonl``):

* gain vector ``g_m(i) = max(a_m(i) - a_sft(i), 0)`` over the items every input has (matched by uid);
* ``g_union(i) = max over the single-domain experts e of g_e(i)`` (element-wise);
* score ``cos(g_union, g_m)``; undefined (null, with the reason) when either vector is all zero;
* bootstrap: items resampled with replacement (``resamples`` draws, one seeded generator per benchmark,
  the same draws for every model so intervals are paired); resamples in which a vector is all zero are
  dropped and counted (``valid_resamples``); percentile interval at ``level``;
* noise floor: ``cos(g_union, g_sft')`` with ``g_sft' = max(a_sft' - a_sft, 0)`` from a second SFT
  evaluation with another seed: the score of a model whose only "gains" are sampling noise. At K = 1
  (a in {0, 1}) the clipping at 0 turns noise into gains, which this floor makes visible.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..keyed_log import read_records

ITEM_KEY = ("benchmark", "uid")
# Fig. 5's benchmarks (the paper does not list them; the set of its Fig. 2 is the likely one).
DEFAULT_BENCHMARKS = ("aime24", "lcb_v5", "gpqa_diamond", "ifeval", "bfcl_v3")
Items = dict[str, dict[str, tuple[float, int]]]  # benchmark -> uid -> (mean, n)
_BLOCK = 500


@dataclass(frozen=True, slots=True)
class GainSettings:
    resamples: int = 10_000
    level: float = 0.95
    seed: int = 0

    def validate(self) -> None:
        if self.resamples < 0:
            raise ConfigError(f"--resamples must be >= 0, got {self.resamples}")
        if not 0 < self.level < 1:
            raise ConfigError(f"--level must lie in (0, 1), got {self.level}")


def load_items(path: str | Path) -> Items:
    """An evaluation directory's (or file's) ``items.jsonl``: benchmark -> uid -> (mean, n).

    Raises:
        ConfigError: no such file, a malformed line, or a repeated (benchmark, uid).
    """
    file = Path(path) / "items.jsonl" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: no such file (items.jsonl of `python -m m2rl_slime.eval run`/`collect`)")
    items: Items = {}
    for _, rec in read_records(file, ITEM_KEY):
        mean, n = rec.get("mean"), rec.get("n")
        if not isinstance(mean, (int, float)) or not isinstance(n, int) or not 0 <= mean <= 1:
            raise ConfigError(f"{file}: item {rec['benchmark']}/{rec['uid']} has no mean in [0, 1] and count n")
        bench = items.setdefault(str(rec["benchmark"]), {})
        if str(rec["uid"]) in bench:
            raise ConfigError(f"{file}: item {rec['benchmark']}/{rec['uid']} appears twice")
        bench[str(rec["uid"])] = (float(mean), n)
    return items


def cosine(u: Any, v: Any) -> tuple[float | None, str | None]:
    """cos(u, v), or (None, why) when a vector is all zero."""
    import numpy as np

    nu, nv = float(np.sqrt(np.dot(u, u))), float(np.sqrt(np.dot(v, v)))
    if nu == 0 or nv == 0:
        return None, "all-zero vector"
    return float(np.dot(u, v) / (nu * nv)), None


def _bootstrap(u: Any, v: Any, seed: Sequence[int], resamples: int, level: float) -> tuple[float | None, float | None, int]:  # fmt: skip
    """Percentile interval of cos over item resamples drawn in blocks (the same `seed` gives the same
    draws, so every model of a benchmark is resampled on the same items)."""
    import numpy as np

    if resamples <= 0:
        return None, None, 0
    rng = np.random.default_rng(list(seed))
    values = []
    for start in range(0, resamples, _BLOCK):
        draws = rng.integers(0, len(u), size=(min(_BLOCK, resamples - start), len(u)))
        uu, vv = u[draws], v[draws]
        dot, nu, nv = (uu * vv).sum(axis=1), (uu * uu).sum(axis=1), (vv * vv).sum(axis=1)
        ok = (nu > 0) & (nv > 0)
        values.append(dot[ok] / np.sqrt(nu[ok] * nv[ok]))
    values = np.concatenate(values)
    if not values.size:
        return None, None, 0
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high), int(values.size)


def _entry(union: Any, gain: Any, seed: Sequence[int], settings: GainSettings, what: str) -> dict[str, Any]:
    value, why = cosine(union, gain)
    reason = None
    if why:
        reason = ("g_union is all zero: no expert improved any item over SFT" if not union.any()
                  else f"g_{what} is all zero: it improved no item over SFT")  # fmt: skip
    low, high, valid = (None, None, 0)
    if value is not None:
        low, high, valid = _bootstrap(union, gain, seed, settings.resamples, settings.level)
    return {"cos": value, "low": low, "high": high, "valid_resamples": valid, "nonzero": int((gain > 0).sum()),
            "overlap": int(((gain > 0) & (union > 0)).sum()), "mean_gain": float(gain.mean()), "reason": reason}  # fmt: skip


def _common(inputs: Mapping[str, Items], bench: str) -> tuple[list[str], dict[str, Any]]:
    """The uids every input has for `bench`, and per input what it lacks or has in excess."""
    sets = {name: set(items.get(bench, {})) for name, items in inputs.items()}
    common = set.intersection(*sets.values())
    union = set.union(*sets.values())
    mismatch = {}
    for name, uids in sets.items():
        missing, extra = sorted(union - uids), sorted(uids - common)
        if missing or extra:
            mismatch[name] = {"missing": len(missing), "missing_examples": missing[:5], "not_common": len(extra)}
    return sorted(common), mismatch


def benchmark_gains(bench: str, sft: Items, reseed: Items | None, experts: Mapping[str, Items],
                    models: Mapping[str, Items], settings: GainSettings) -> dict[str, Any]:  # fmt: skip
    """The Fig. 5 numbers of one benchmark (see the module docstring)."""
    import numpy as np

    inputs = {"sft": sft, **({"sft_reseed": reseed} if reseed is not None else {}), **experts, **models}
    absent = [name for name, items in inputs.items() if bench not in items]
    if absent:
        return {"n_items": 0, "reason": f"not evaluated by {', '.join(absent)}"}
    uids, mismatch = _common(inputs, bench)
    if not uids:
        return {"n_items": 0, "mismatch": mismatch, "reason": "no item is common to every input"}
    a = {name: np.array([items[bench][u][0] for u in uids]) for name, items in inputs.items()}
    k = {name: [min(items[bench][u][1] for u in uids), max(items[bench][u][1] for u in uids)]
         for name, items in inputs.items()}  # fmt: skip
    gain = {name: np.maximum(a[name] - a["sft"], 0.0) for name in inputs if name != "sft"}
    union = np.max(np.stack([gain[e] for e in experts]), axis=0)
    seed = (settings.seed, zlib.crc32(bench.encode()))
    result = {
        "n_items": len(uids), "k": k, "mismatch": mismatch,
        "union": {"nonzero": int((union > 0).sum()), "mean_gain": float(union.mean())},
        "models": {m: _entry(union, gain[m], seed, settings, m) for m in models},
        "experts": {e: _entry(union, gain[e], seed, settings, e) for e in experts},
    }  # fmt: skip
    if reseed is not None:
        result["noise_floor"] = _entry(union, gain["sft_reseed"], seed, settings, "sft_reseed")
    else:
        result["noise_floor"] = {"cos": None, "reason": "no second SFT evaluation (--sft-reseed)"}
    return result


def gains_report(benchmarks: Sequence[str], sft: Items, reseed: Items | None, experts: Mapping[str, Items],
                 models: Mapping[str, Items], settings: GainSettings) -> dict[str, Any]:  # fmt: skip
    """Every benchmark's numbers; raises ConfigError when no benchmark has a single common item."""
    results = {b: benchmark_gains(b, sft, reseed, experts, models, settings) for b in benchmarks}
    if not any(r["n_items"] for r in results.values()):
        reasons = "; ".join(f"{b}: {r['reason']}" for b, r in results.items())
        raise ConfigError(f"no benchmark has items common to every input ({reasons})")
    return {"benchmarks": list(benchmarks), "results": results}


def is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
