"""``selfverify.json`` / ``selfverify.csv`` / ``table7.csv``: how well each model judges its own answers.

Per (model, mode, benchmark), over the judged trajectories t with gold label y_t (rule verifier) and K
verdicts v_tj each (an unparsable verdict is wrong whatever y_t is):

* judge accuracy = mean_t mean_j [v_tj = y_t] (the paper's "Avg@8" agreement); its standard error treats
  the item as the unit (trajectories of one item averaged first);
* TPR = mean over gold-correct t of the share of "correct" verdicts; TNR = mean over gold-incorrect t of
  the share of "incorrect" verdicts; balanced accuracy = (TPR + TNR) / 2 (null when a class is absent);
* always-correct baseline = mean_t [y_t = correct]: what a judge that always says "correct" scores;
* unparsable verdicts are counted, by cause.

Table 7 puts next to each other the model's generation score (Avg@K over all its scored samples of the
benchmark) and its outcome- and process-mode judge accuracy; a model's averages are taken over the
benchmarks where all three exist. Fig. 6 correlates, over models, the generation average with each
mode's judge average: Pearson r, two-sided p (t-test, df = n - 2) and a bootstrap interval over models.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..keyed_log import read_records
from ..outputs import save_csv, save_json
from ..uncertainty import mean_se, pearson
from .judging import JUDGE, JUDGE_KEY

SELFVERIFY_JSON, SELFVERIFY_CSV, TABLE7_CSV = "selfverify.json", "selfverify.csv", "table7.csv"


def judge_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The metrics of one (model, mode, benchmark) from its verdict records (see the module docstring)."""
    by_traj: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        by_traj[(str(rec["uid"]), int(rec["sample_idx"]))].append(rec)
    agree, says_correct, gold, by_item = [], [], [], defaultdict(list)
    tpr_parts, tnr_parts = [], []
    for (uid, _), recs in by_traj.items():
        y = recs[0]["gold"]
        a = sum(r["verdict"] == y for r in recs) / len(recs)
        c = sum(r["verdict"] == "correct" for r in recs) / len(recs)
        agree.append(a)
        says_correct.append(c)
        gold.append(y == "correct")
        by_item[uid].append(a)
        if y == "correct":
            tpr_parts.append(c)
        else:
            tnr_parts.append(sum(r["verdict"] == "incorrect" for r in recs) / len(recs))
    errors = Counter(r["parse_error"] for r in records if r["verdict"] is None)
    items = mean_se([sum(v) / len(v) for v in by_item.values()])
    tpr = sum(tpr_parts) / len(tpr_parts) if tpr_parts else None
    tnr = sum(tnr_parts) / len(tnr_parts) if tnr_parts else None
    counts = Counter(len(recs) for recs in by_traj.values())
    out = {
        "n_items": len(by_item), "n_trajectories": len(by_traj), "n_judgments": len(records),
        "judgments_per_trajectory": {"min": min(counts), "max": max(counts)},
        "accuracy": sum(agree) / len(agree), "accuracy_se": items.se,
        "tpr": tpr, "tnr": tnr, "balanced_accuracy": (tpr + tnr) / 2 if tpr is not None and tnr is not None else None,
        "always_correct": sum(gold) / len(gold), "says_correct": sum(says_correct) / len(says_correct),
        "n_gold_correct": len(tpr_parts), "n_gold_incorrect": len(tnr_parts),
        "unparsable": sum(errors.values()), "unparsable_rate": sum(errors.values()) / len(records),
        "unparsable_by_cause": dict(errors),
    }  # fmt: skip
    if out["balanced_accuracy"] is None:
        out["balanced_reason"] = "every judged trajectory has the same gold label"
    return out


def load_verdicts(out: Path, k: int, max_per_item: int) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """(model, mode, benchmark) -> its verdict records in ``judge.jsonl`` (judge_idx < k, sample_idx <
    max_per_item: a rerun with a smaller K or fewer samples per item reports on that subset)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    if (out / JUDGE).is_file():
        for _, rec in read_records(out / JUDGE, JUDGE_KEY):
            if rec["judge_idx"] >= k or rec["sample_idx"] >= max_per_item:
                continue
            groups[(rec["model"], rec["mode"], rec["benchmark"])].append(rec)
    return groups


def _table7(metrics: Mapping[str, Any], generation: Mapping[str, Any], models: Sequence[str],
            modes: Sequence[str], benchmarks: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    table = {}
    for m in models:
        per = {}
        for b in benchmarks:
            row = {"gen": (generation.get(m, {}).get(b) or {}).get("avg")}
            for mode in modes:
                row[mode] = (metrics.get(m, {}).get(mode, {}).get(b) or {}).get("accuracy")
            per[b] = row
        full = [b for b in benchmarks if all(v is not None for v in per[b].values())]
        average = {key: (sum(per[b][key] for b in full) / len(full) if full else None) for key in ("gen", *modes)}
        table[m] = {"per_benchmark": per, "average": {**average, "benchmarks": full}}
    return table


def _correlations(table: Mapping[str, Any], modes: Sequence[str], benchmarks: Sequence[str], resamples: int,
                  seed: int) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    def corr(pairs: list[tuple[str, float, float]]) -> dict[str, Any]:
        c = pearson([p[1] for p in pairs], [p[2] for p in pairs], resamples=resamples, seed=seed)
        return {**asdict(c), "models": [p[0] for p in pairs]}

    overall, per_bench = {}, {}
    for mode in modes:
        pairs = [(m, t["average"]["gen"], t["average"][mode]) for m, t in table.items()
                 if t["average"]["gen"] is not None and t["average"][mode] is not None]  # fmt: skip
        overall[mode] = corr(pairs)
        per_bench[mode] = {}
        for b in benchmarks:
            pairs = [(m, t["per_benchmark"][b]["gen"], t["per_benchmark"][b][mode]) for m, t in table.items()
                     if t["per_benchmark"][b]["gen"] is not None and t["per_benchmark"][b][mode] is not None]  # fmt: skip
            per_bench[mode][b] = corr(pairs)
    return overall, per_bench


def build_report(out: Path, models: Sequence[str], modes: Sequence[str], benchmarks: Sequence[str],
                 generation: Mapping[str, Any], meta: Mapping[str, Any], *, k: int, max_per_item: int,
                 resamples: int, seed: int, fig8: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """The content of ``selfverify.json`` from ``judge.jsonl`` and the models' generation scores."""
    groups = load_verdicts(out, k, max_per_item)
    metrics: dict[str, Any] = {m: {mode: {} for mode in modes} for m in models}
    for (model, mode, bench), recs in groups.items():
        if model in metrics and mode in metrics[model] and bench in benchmarks:
            metrics[model][mode][bench] = judge_metrics(recs)
    table = _table7(metrics, generation, models, modes, benchmarks)
    overall, per_bench = _correlations(table, modes, benchmarks, resamples, seed)
    return {
        "analysis": "selfverify", **meta, "models": list(models), "modes": list(modes), "benchmarks": list(benchmarks),
        "metrics": metrics, "generation": generation, "table7": table, "correlation": overall,
        "per_benchmark_correlation": per_bench, "fig8_models": [m for m in fig8 if m in models],
    }  # fmt: skip


_METRIC_COLUMNS = ("n_items", "n_trajectories", "n_judgments", "accuracy", "accuracy_se", "balanced_accuracy",
                   "tpr", "tnr", "always_correct", "says_correct", "unparsable", "unparsable_rate")  # fmt: skip


def write_report(out: Path, report: Mapping[str, Any]) -> list[Path]:
    """``selfverify.json``, ``selfverify.csv`` (one row per model, mode, benchmark) and ``table7.csv``."""
    rows = []
    for model, by_mode in report["metrics"].items():
        for mode, by_bench in by_mode.items():
            for bench, m in by_bench.items():
                gen = (report["generation"].get(model, {}).get(bench) or {}).get("avg")
                rows.append([model, mode, bench, gen, *(m.get(c) for c in _METRIC_COLUMNS)])
    wide_header = ["model"] + [f"{b}_{k}" for b in report["benchmarks"] for k in ("gen", *report["modes"])]
    wide_header += [f"avg_{k}" for k in ("gen", *report["modes"])]
    wide = []
    for model, t in report["table7"].items():
        cells = [t["per_benchmark"][b][k] for b in report["benchmarks"] for k in ("gen", *report["modes"])]
        wide.append([model, *cells, *(t["average"][k] for k in ("gen", *report["modes"]))])
    return [
        save_json(out / SELFVERIFY_JSON, report),
        save_csv(out / SELFVERIFY_CSV, ("model", "mode", "benchmark", "gen", *_METRIC_COLUMNS), rows),
        save_csv(out / TABLE7_CSV, wide_header, wide),
    ]


def _pct(value: Any) -> str:
    return f"{100 * value:6.1f}" if isinstance(value, (int, float)) else f"{'-':>6}"


def format_report(report: Mapping[str, Any]) -> str:
    """Table 7 (x 100) with balanced accuracy and the always-correct baseline, then the correlations."""
    modes, lines = report["modes"], []
    lines.append(
        "Table 7: generation (Avg@K) vs judge accuracy (x100); bal = balanced accuracy, base = always-correct"
    )
    for model, t in report["table7"].items():
        lines.append(f"{model}")
        for bench, row in t["per_benchmark"].items():
            parts = [f"gen {_pct(row['gen'])}"]
            for mode in modes:
                m = report["metrics"][model][mode].get(bench) or {}
                parts.append(f"{mode} {_pct(row[mode])} (bal {_pct(m.get('balanced_accuracy'))}, base "
                             f"{_pct(m.get('always_correct'))}, unparsable {m.get('unparsable', '-')})")  # fmt: skip
            lines.append(f"  {bench:<14} " + "  ".join(parts))
        avg = t["average"]
        lines.append(
            f"  {'average':<14} gen {_pct(avg['gen'])}  " + "  ".join(f"{mode} {_pct(avg[mode])}" for mode in modes)
        )
    for mode, c in report["correlation"].items():
        if c["r"] is None:
            lines.append(f"r(gen, {mode}): undefined ({c['reason']}), n = {c['n']}")
            continue
        ci = f", bootstrap [{c['low']:.2f}, {c['high']:.2f}]" if c.get("low") is not None else ""
        lines.append(f"r(gen, {mode}) = {c['r']:+.3f}, p = {c['p']:.3g} (two-sided t-test, df = {c['df']}), "
                     f"n = {c['n']}{ci}")  # fmt: skip
    return "\n".join(lines)
