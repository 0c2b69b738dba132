"""``eval summarize DIR``: Avg@K +- standard error per benchmark, with n, K, sampling and scorer, into
``DIR/summary.json`` and a printed table.

Per benchmark the summary holds ``n_items`` (items with at least one scored sample), ``k`` (the suite's K)
and the realised samples per item, ``avg`` and ``stderr`` (fractions in [0, 1]), the scorer and the
scorer version(s) of its samples, the sampling settings, the item set (``subset``), and the counts that
qualify the number: ``pending`` (unscored samples), ``truncated``, ``infra_failures`` (samples whose
reason is an infrastructure failure, which score 0 but say nothing about the model). A benchmark of the
suite with no samples is listed with ``missing`` and why; it is never a 0.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .samples import RUN, SAMPLES, SUMMARY, item_rows, read_json, read_samples, write_json
from .stats import avg_at_k
from .suite import Suite, load_suite

logger = logging.getLogger(__name__)
INFRA_REASONS = frozenset({"sandbox_error", "sandbox_unavailable", "worker_crash", "internal_error"})


def _suite_of(run: Mapping[str, Any]) -> Suite | None:
    for ref in (run.get("suite_path"), run.get("suite")):
        if ref:
            try:
                return load_suite(ref)
            except ConfigError:
                continue
    return None


def benchmark_summary(samples: list[Mapping[str, Any]], protocol: Mapping[str, Any]) -> dict[str, Any]:
    """The summary entry of one benchmark from its samples and its protocol (k, sampling, scorer, subset)."""
    items = item_rows(samples)
    statuses = Counter(str(s.get("status")) for s in samples)
    reasons = Counter(str(s.get("reason")) for s in samples if s.get("reward") is not None)
    per_item = Counter(row["n"] for row in items)
    versions = sorted({str(s.get("scorer_version")) for s in samples if s.get("reward") is not None})
    entry: dict[str, Any] = {
        "n_items": len(items),
        "k": protocol.get("k"),
        "n_samples": len(samples),
        "samples_per_item": {"min": min(per_item), "max": max(per_item)} if per_item else None,
        "pending": sum(1 for s in samples if s.get("reward") is None),
        "truncated": statuses.get("truncated", 0),
        "infra_failures": sum(n for r, n in reasons.items() if r in INFRA_REASONS),
        "scorer": protocol.get("scorer") or next((s.get("scorer") for s in samples), None),
        "scorer_version": versions[0] if len(versions) == 1 else versions,
        "sampling": protocol.get("sampling"),
        "subset": protocol.get("subset"),
        "reasons": dict(reasons),
    }
    if items:
        estimate = avg_at_k([row["mean"] for row in items])
        entry.update(avg=estimate.avg, stderr=estimate.stderr)
        k = protocol.get("k")
        entry["complete"] = bool(k) and entry["pending"] == 0 and per_item == Counter({k: len(items)})
    else:
        entry.update(avg=None, stderr=None, complete=False)
    return entry


def summarize(directory: str | Path, *, write: bool = True) -> dict[str, Any]:
    """Summarize an evaluation directory (and write ``summary.json`` unless `write` is False).

    Raises:
        ConfigError: the directory has no samples.
    """
    directory = Path(directory)
    run = read_json(directory / RUN) if (directory / RUN).is_file() else {}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_samples(directory / SAMPLES):
        groups[str(record["benchmark"])].append(record)
    suite = _suite_of(run)
    order = [b.name for b in suite.benchmarks] if suite else []
    order += [name for name in groups if name not in order]
    protocols = dict(run.get("benchmarks") or {})
    benchmarks: dict[str, Any] = {}
    for name in order:
        bench = suite.get(name) if suite and name in {b.name for b in suite.benchmarks} else None
        protocol = protocols.get(name) or (bench.protocol() if bench else {})
        title = bench.label if bench else name
        if name not in groups:
            benchmarks[name] = {"title": title, "missing": True, "why": "no samples (its prepared file was not built "
                                "or it was not run)", "k": protocol.get("k"), "n_expected": bench.n if bench else None}  # fmt: skip
            continue
        entry = benchmark_summary(groups[name], protocol)
        benchmarks[name] = {"title": title, "n_expected": bench.n if bench else None, **entry}
    summary = {
        "model_id": run.get("model_id") or next((g[0].get("model_id") for g in groups.values()), None),
        "suite": run.get("suite"),
        "suite_sha": run.get("suite_sha"),
        "ckpt_sha": run.get("ckpt_sha"),
        "model_path": run.get("model_path"),
        "generator": run.get("generator"),
        "benchmarks": benchmarks,
    }
    if write:
        write_json(directory / SUMMARY, summary)
    return summary


def _sampling(sampling: Mapping[str, Any] | None) -> str:
    if not sampling:
        return "-"
    return f"T={sampling.get('temperature')} top_p={sampling.get('top_p')} max={sampling.get('max_tokens')}"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The printed table: one line per benchmark, every score with its n, K, sampling and scorer."""
    lines = [f"model {summary.get('model_id')}  suite {summary.get('suite')} ({summary.get('suite_sha')})"]
    header = f"{'benchmark':<14} {'Avg@K':>7} {'s.e.':>7} {'n':>6} {'K':>4}  {'sampling':<32} scorer"
    lines += [header, "-" * len(header)]
    for name, entry in summary["benchmarks"].items():
        title = str(entry.get("title") or name)[:14]
        if entry.get("missing"):
            lines.append(f"{title:<14} missing: {entry['why']}")
            continue
        notes = []
        if entry["pending"]:
            notes.append(f"{entry['pending']} samples pending (run `eval score`)")
        if entry["infra_failures"]:
            notes.append(f"{entry['infra_failures']} infrastructure failures")
        if not entry.get("complete") and not entry["pending"]:
            notes.append(f"incomplete: {entry['samples_per_item']} samples per item")
        if entry["avg"] is None:
            lines.append(f"{title:<14} {'pending':>7} {'':>7} {0:>6} {entry['k'] or '-':>4}  {'; '.join(notes)}")
            continue
        se = f"{100 * entry['stderr']:.2f}" if entry["stderr"] is not None else "-"
        version = entry["scorer_version"] if isinstance(entry["scorer_version"], str) else "mixed versions"
        lines.append(
            f"{title:<14} {100 * entry['avg']:>7.2f} {se:>7} {entry['n_items']:>6} {entry['k'] or '-':>4}  "
            f"{_sampling(entry['sampling']):<32} {entry['scorer']} ({version})" + (f"  [{'; '.join(notes)}]" if notes else "")
        )  # fmt: skip
    return "\n".join(lines)


def item_means(directory: str | Path) -> dict[str, dict[str, float]]:
    """benchmark -> item uid -> mean reward (scored samples only), from ``samples.jsonl``."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for row in item_rows(read_samples(Path(directory) / SAMPLES)):
        out[row["benchmark"]][row["uid"]] = row["mean"]
    return dict(out)


def summaries(directories: Iterable[str | Path]) -> list[dict[str, Any]]:
    return [summarize(d, write=False) for d in directories]
