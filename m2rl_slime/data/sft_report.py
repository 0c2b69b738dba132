"""What a ``prepare-sft`` run reports: per-source tallies, the summary table and ``manifest.json`` (not a slime
hook)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .sft_fill import FILL_FORMATS, UNRESOLVED
from .sft_rules import SourceSpec
from .sft_shards import MANIFEST_KIND, MANIFEST_VERSION


@dataclass(slots=True)
class SourceTally:
    """What one source contributed. Placeholder rows that were filled count as fixed."""

    spec: SourceSpec
    files: list[dict] = field(default_factory=list)
    rows_in: int = 0
    invalid: Counter = field(default_factory=Counter)
    clean: int = 0
    fixed: int = 0
    placeholder_user: int = 0  # valid rows with a '-' user turn (filled or dropped)
    filled: Counter = field(default_factory=Counter)  # placeholder rows filled, per fill source
    wanted: int = 0
    rows_out: int = 0
    shards: list[dict] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return self.clean + self.fixed

    @property
    def unresolved(self) -> int:
        return sum(n for reason, n in self.invalid.items() if reason.startswith(UNRESOLVED))


def _fill_hint() -> str:
    return " ".join(f"--fill-source {name}=PATH" for name in FILL_FORMATS)


@dataclass(slots=True)
class SFTSummary:
    """What a prepare-sft run did; `table()` is the CLI's report, `manifest` what was written."""

    sources: list[SourceTally]
    manifest: dict
    out_dir: Path

    def table(self) -> str:
        total = sum(t.rows_out for t in self.sources)
        asked = requested_shares(self.sources)
        head = f"{'source':<22} {'rule':<14} {'rows in':>11} {'invalid':>9} {'valid':>11} {'rows out':>11}"
        lines = [head + f" {'share %':>8} {'asked %':>8} {'paper rows':>11}"]
        for t, want in zip(self.sources, asked):
            share = 100.0 * t.rows_out / total if total else 0.0
            paper = f"{t.spec.rows:>11}" if t.spec.rows is not None else f"{'-':>11}"
            flag = "  (!)" if t.spec.rows is not None and t.spec.rows != t.rows_out else ""
            lines.append(
                f"{t.spec.name:<22} {str(t.spec.rule):<14} {t.rows_in:>11} {sum(t.invalid.values()):>9} "
                f"{t.valid:>11} {t.rows_out:>11} {share:>8.2f} {want:>8.2f} {paper}{flag}"
            )
        lines.append(f"{'total':<22} {'':<14} {sum(t.rows_in for t in self.sources):>11} {'':>9} {'':>11} {total:>11}")
        for t in self.sources:
            if t.invalid:
                reasons = ", ".join(f"{r}={n}" for r, n in sorted(t.invalid.items()))
                lines.append(f"{t.spec.name}: dropped {reasons}")
            if t.filled:
                filled = ", ".join(f"{name}={n}" for name, n in sorted(t.filled.items()))
                lines.append(
                    f"{t.spec.name}: filled the '-' placeholder user turn of {sum(t.filled.values())} rows ({filled})"
                )
        lines.extend(self._fill_lines())
        return "\n".join(lines)

    def _fill_lines(self) -> list[str]:
        fill = self.manifest.get("fill_sources") or {}
        lines = []
        if fill:
            lines.append(
                f"{'fill source':<22} {'problems found':>15} {'unresolved':>11} {'rows filled':>12} {'dropped':>9}"
            )
            for name, entry in fill.items():
                lines.append(
                    f"{name:<22} {entry['problems_found']:>15} {entry['problems_unresolved']:>11} "
                    f"{entry['rows_filled']:>12} {entry['rows_unresolved']:>9}"
                )
        elif any(t.unresolved for t in self.sources):
            dropped = sum(t.unresolved for t in self.sources)
            lines.append(f"{dropped} rows with a '-' placeholder user turn were dropped; {_fill_hint()} fills them")
        return lines


def requested_shares(tallies: Sequence[SourceTally]) -> list[float]:
    """Percent shares asked for: the specs' `share` when every source has one, else the rules' targets."""
    if tallies and all(t.spec.share is not None for t in tallies):
        return [float(t.spec.share) for t in tallies]
    total = sum(t.wanted for t in tallies)
    return [100.0 * t.wanted / total if total else 0.0 for t in tallies]


def manifest_of(tallies: Sequence[SourceTally], options, fmt: str, fill: dict | None) -> dict:
    """The blend's ``manifest.json`` (`options`: the run's `sft_blend.SFTOptions`)."""
    total = sum(t.rows_out for t in tallies)
    asked = requested_shares(tallies)
    sources = []
    for t, want in zip(tallies, asked):
        sources.append(
            {
                "name": t.spec.name,
                "rule": str(t.spec.rule),
                "files": t.files,
                "rows_in": t.rows_in,
                "invalid": dict(sorted(t.invalid.items())),
                "valid": t.valid,
                "clean": t.clean,
                "fixed": t.fixed,
                "placeholder_user": t.placeholder_user,
                "filled": dict(sorted(t.filled.items())),
                "wanted": t.wanted,
                "rows_out": t.rows_out,
                "share": round(100.0 * t.rows_out / total, 4) if total else 0.0,
                "share_requested": round(want, 4),
                "rows_expected": t.spec.rows,
                "shards": t.shards,
            }
        )
    digest = hashlib.sha256()
    for source in sources:
        for shard in source["shards"]:
            digest.update(f"{source['name']}/{shard['file']}:{shard['rows']}:{shard['sha256']}\n".encode())
    return {
        "kind": MANIFEST_KIND,
        "version": MANIFEST_VERSION,
        "created_by": f"m2rl_slime {__version__}",
        "seed": options.seed,
        "format": fmt,
        "shard_rows": options.shard_rows,
        "row_group_rows": options.row_group_rows,
        "limit": options.limit,
        "total_rows": total,
        "blend_sha256": digest.hexdigest(),
        "fill_sources": fill or {},
        "sources": sources,
    }
