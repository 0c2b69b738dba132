"""``kl.json`` / ``kl.csv``: the cross-comparison matrices, the neighbourhood rule of Eq. 1 and delta-Perf.

One matrix per multi-domain model M: row = expert B (the sampler), column = data domain A, cell =
KL(pi_B || pi_M) on A's prompts (`estimators`). B is a neighbour of A (B != A) when the cell's chosen
estimate (``--estimator``, ``--normalise``) is below epsilon_A:

* ``relative`` (default): epsilon_A = KL_AA + |KL_AA| * delta, KL_AA being the diagonal cell (expert A on
  its own domain; for KL_AA >= 0 this is KL_AA * (1 + delta)); a cell also gets
  ``z = (epsilon_A - KL_BA) / sqrt(se_BA^2 + ((1 + delta) se_AA)^2)``, how many standard errors it lies
  inside (z > 0) or outside the neighbourhood;
* ``absolute``: one epsilon for every domain (``--eps``), z with se_BA alone;
* ``rank``: the ``--rank`` experts B != A with the lowest KL on A (ties by name), no epsilon.

delta-Perf of a cell is the expert B's score on domain A's benchmarks minus the reference model's
(``--perf-ref``, default ``sft``), in points, from the evaluation runner's ``summary.json`` files.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ...errors import ConfigError
from ...eval.samples import read_json
from ..keyed_log import read_records
from ..outputs import save_csv, save_json
from .estimators import CellEstimate, Estimator, Normalisation, SequenceTerms, estimate
from .sampling import PAIR_KEY, PAIRS

Rule = Literal["relative", "absolute", "rank"]
RULES: tuple[Rule, ...] = ("relative", "absolute", "rank")
KL_JSON, KL_CSV = "kl.json", "kl.csv"
# The benchmarks whose mean Avg@K is a domain's performance (override with --domain-benchmarks).
DOMAIN_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "math": ("aime24", "aime25"),
    "code": ("lcb_v5", "lcb_v6"),
    "science": ("gpqa_diamond",),
    "if": ("ifeval",),
    "agent": ("bfcl_v3",),
}


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Which estimate decides neighbourhood, and how (see the module docstring)."""

    estimator: Estimator = "k1"
    normalisation: Normalisation = "token"
    rule: Rule = "relative"
    delta: float = 0.0
    eps: float | None = None
    rank: int = 1

    def validate(self) -> None:
        if self.rule == "absolute" and self.eps is None:
            raise ConfigError("--rule absolute needs --eps VALUE")
        if self.rule == "rank" and self.rank < 1:
            raise ConfigError(f"--rank must be >= 1, got {self.rank}")
        if self.delta < 0 and self.rule == "relative":
            raise ConfigError(f"--delta must be >= 0, got {self.delta}")


@dataclass(frozen=True, slots=True)
class Perf:
    """Per-domain scores of named models (points) and the reference that delta-Perf subtracts."""

    scores: Mapping[str, Mapping[str, float]]
    ref: str
    domain_benchmarks: Mapping[str, Sequence[str]]


def load_perf(summaries: Mapping[str, str], ref: str, domain_benchmarks: Mapping[str, Sequence[str]]) -> Perf:
    """Read ``summary.json`` files (NAME -> file or evaluation directory) into per-domain scores.

    A domain's score is the mean Avg@K (x 100) of its benchmarks present in the summary; a domain none of
    whose benchmarks is there has no score.

    Raises:
        ConfigError: an unreadable summary, or `ref` not among the names while summaries are given.
    """
    if summaries and ref not in summaries:
        raise ConfigError(f"--perf-ref {ref!r} is not among the --summary names ({', '.join(summaries)})")
    scores: dict[str, dict[str, float]] = {}
    for name, path in summaries.items():
        file = Path(path) / "summary.json" if Path(path).is_dir() else Path(path)
        benchmarks = read_json(file).get("benchmarks")
        if not isinstance(benchmarks, Mapping):
            raise ConfigError(f"{file}: not an evaluation summary (no `benchmarks`); run `eval summarize`")
        scores[name] = {}
        for domain, names in domain_benchmarks.items():
            values = [benchmarks[b]["avg"] for b in names if isinstance(benchmarks.get(b), Mapping)
                      and isinstance(benchmarks[b].get("avg"), (int, float))]  # fmt: skip
            if values:
                scores[name][domain] = 100.0 * math.fsum(values) / len(values)
    return Perf(scores, ref, {d: list(b) for d, b in domain_benchmarks.items()})


def load_terms(out: Path, selection: Mapping[str, Collection[str]], samples_per_prompt: int) -> tuple[
    dict[tuple[str, str, str], list[SequenceTerms]], dict[tuple[str, str, str], int]
]:  # fmt: skip
    """(multi, expert, domain) -> the scored sequences' terms, and -> how many of them were truncated; only
    records of the selected prompts (domain -> uids) and sample indices below `samples_per_prompt`."""
    terms: dict[tuple[str, str, str], list[SequenceTerms]] = defaultdict(list)
    truncated: dict[tuple[str, str, str], int] = defaultdict(int)
    if not (out / PAIRS).is_file():
        return {}, {}
    for _, rec in read_records(out / PAIRS, PAIR_KEY):
        if rec["uid"] not in selection.get(rec["domain"], ()) or rec["sample_idx"] >= samples_per_prompt:
            continue
        key = (rec["multi"], rec["expert"], rec["domain"])
        terms[key].append(SequenceTerms(int(rec["n_tokens"]), float(rec["k1"]), float(rec["k3"]),
                                        float(rec.get("max_abs_log_ratio") or 0.0)))  # fmt: skip
        truncated[key] += rec.get("status") == "truncated"
    return dict(terms), dict(truncated)


def _cell(terms: list[SequenceTerms] | None) -> CellEstimate | None:
    if not terms or sum(t.n_tokens for t in terms) == 0:
        return None
    return estimate(terms)


def _neighbourhood(cells: Mapping[str, Mapping[str, CellEstimate | None]], experts: Sequence[str], domain: str,
                   rule: RuleConfig) -> tuple[float | None, str | None, dict[str, dict[str, Any]]]:  # fmt: skip
    """epsilon of `domain` (or why none), and per expert: value, se, z, rank, neighbour."""
    get = lambda b: cells[b][domain].get(rule.estimator, rule.normalisation) if cells[b][domain] else None  # noqa: E731
    others = sorted((b for b in experts if b != domain and get(b) is not None), key=lambda b: (get(b).value, b))
    marks: dict[str, dict[str, Any]] = {}
    eps, why, se_ref = None, None, 0.0
    if rule.rule == "relative":
        diag = get(domain) if domain in experts else None
        if diag is None:
            why = f"no expert named {domain!r} with scored samples on {domain}: the relative rule needs KL_AA"
        else:
            eps, se_ref = diag.value + abs(diag.value) * rule.delta, (1 + rule.delta) * (diag.se or 0.0)
    elif rule.rule == "absolute":
        eps = rule.eps
    for b in experts:
        cell = get(b)
        if cell is None:
            marks[b] = {"value": None, "se": None, "z": None, "rank": None, "neighbour": False}
            continue
        z = None
        spread = math.hypot(cell.se or 0.0, se_ref)
        if eps is not None and b != domain and spread > 0:
            z = (eps - cell.value) / spread
        rank = others.index(b) + 1 if b in others else None
        if rule.rule == "rank":
            neighbour = rank is not None and rank <= rule.rank
        else:
            neighbour = eps is not None and b != domain and cell.value < eps
        marks[b] = {"value": cell.value, "se": cell.se, "z": z, "rank": rank, "neighbour": neighbour}
    return eps, why, marks


def build_report(out: Path, selection: Mapping[str, Collection[str]], experts: Sequence[str], multis: Sequence[str],
                 rule: RuleConfig, perf: Perf | None, meta: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The content of ``kl.json`` from the records in `out` (see the module docstring).

    Args:
        selection: data domain -> the uids of its prompts (in column order).
        meta: ``run.json``'s settings and inputs, copied into the report.
    """
    domains = list(selection)
    selected = {d: set(u) for d, u in selection.items()}
    terms, truncated = load_terms(out, selected, int(meta["settings"]["samples_per_prompt"]))
    delta = _delta_perf(perf, experts, domains)
    matrices: dict[str, Any] = {}
    for multi in multis:
        cells = {b: {a: _cell(terms.get((multi, b, a))) for a in domains} for b in experts}
        eps, why, neighbours, table = {}, {}, {}, {b: {} for b in experts}
        for a in domains:
            eps[a], reason, marks = _neighbourhood(cells, experts, a, rule)
            if reason:
                why[a] = reason
            neighbours[a] = [b for b in experts if marks[b]["neighbour"]]
            for b in experts:
                cell = cells[b][a]
                entry = cell.to_json() if cell else {"n_sequences": 0, "reason": "no scored samples"}
                entry.update(marks[b], diagonal=a == b, truncated=truncated.get((multi, b, a), 0),
                             delta_perf=delta.get(b, {}).get(a))  # fmt: skip
                table[b][a] = entry
        matrices[multi] = {"cells": table, "eps": eps, "eps_reason": why, "neighbours": neighbours}
    perf_json = None
    if perf is not None:
        perf_json = {"ref": perf.ref, "domain_benchmarks": perf.domain_benchmarks, "scores": perf.scores,
                     "delta": delta, "units": "points (Avg@K x 100)"}  # fmt: skip
    return {
        "analysis": "kl", **meta, "rule": asdict(rule), "domains": list(domains), "experts": list(experts),
        "multis": list(multis), "matrices": matrices, "perf": perf_json,
    }  # fmt: skip


def _delta_perf(perf: Perf | None, experts: Sequence[str], domains: Sequence[str]) -> dict[str, dict[str, float]]:
    if perf is None or perf.ref not in perf.scores:
        return {}
    ref = perf.scores[perf.ref]
    out: dict[str, dict[str, float]] = {}
    for b in experts:
        own = perf.scores.get(b, {})
        out[b] = {a: own[a] - ref[a] for a in domains if a in own and a in ref}
    return out


CSV_HEADER = (
    "multi", "expert", "domain", "diagonal", "n_sequences", "n_tokens", "truncated",
    "k1_token", "k1_token_se", "k3_token", "k3_token_se", "k1_sequence", "k1_sequence_se", "k3_sequence",
    "k3_sequence_se", "eps", "neighbour", "z", "rank", "delta_perf",
)  # fmt: skip


def write_report(out: Path, report: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``kl.json`` and ``kl.csv`` into `out`."""
    rows = []
    for multi, matrix in report["matrices"].items():
        for b, row in matrix["cells"].items():
            for a, cell in row.items():
                est = [cell.get(norm, {}).get(k, {}) for norm in ("per_token", "per_sequence") for k in ("k1", "k3")]
                values = [x for e in est for x in (e.get("value"), e.get("se"))]
                rows.append([multi, b, a, cell["diagonal"], cell.get("n_sequences"), cell.get("n_tokens"),
                             cell["truncated"], *values, matrix["eps"].get(a), cell["neighbour"], cell["z"],
                             cell["rank"], cell["delta_perf"]])  # fmt: skip
    return save_json(out / KL_JSON, report), save_csv(out / KL_CSV, CSV_HEADER, rows)


def format_report(report: Mapping[str, Any]) -> str:
    """The printed matrices: value +- se per cell, * for neighbours, [ ] around the diagonal."""
    rule = report["rule"]
    lines = [f"KL(expert || multi) {rule['estimator']} per {rule['normalisation']}, rule {rule['rule']}"]
    domains = report["domains"]
    for multi, matrix in report["matrices"].items():
        lines.append(f"multi = {multi}   (rows: expert, columns: data domain)")
        lines.append(f"{'':<12}" + "".join(f"{a:>20}" for a in domains))
        for b, row in matrix["cells"].items():
            text = []
            for a in domains:
                c = row[a]
                if c["value"] is None:
                    text.append(f"{'-':>20}")
                    continue
                se = f"{c['se']:.3g}" if c["se"] is not None else "-"
                cell = f"{c['value']:.4g}±{se}{'*' if c['neighbour'] else ''}"
                text.append(f"{'[' + cell + ']' if c['diagonal'] else cell:>20}")
            lines.append(f"{b:<12}" + "".join(text))
        eps = "  ".join(f"{a}={v:.4g}" if v is not None else f"{a}=-" for a, v in matrix["eps"].items())
        lines.append(f"eps: {eps}")
    return "\n".join(lines)
