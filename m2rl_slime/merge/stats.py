"""Per-expert delta statistics, counted exactly while merging.

For expert i, over every merged element (comparisons on the stored bits):

* ``changed``: theta_i != theta_b;
* ``vanished``: changed, and the written output equals the base (trimmed, dropped, sign-conflicting or
  rounded away: the update left no trace there);
* ``rounded_back``: changed, the fp32 merge differs from the base, but the output rounds back to the base
  value in the output dtype. A small averaged RL delta (a 1-ulp bf16 change times 1/5) does exactly this.

And for the merge as a whole: ``merged_changed`` (fp32 merge != base) and ``merged_rounded_back``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)
_INT_VIEW = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}


@dataclass(slots=True)
class DeltaCounts:
    """Integer counters; `add` is order-free, so totals do not depend on threads or chunking."""

    n: int
    elements: int = 0
    per_expert: list[list[int]] = field(default_factory=list)  # [changed, vanished, rounded_back] per expert
    merged_changed: int = 0
    merged_rounded_back: int = 0

    def __post_init__(self) -> None:
        if not self.per_expert:
            self.per_expert = [[0, 0, 0] for _ in range(self.n)]

    def add(self, other: DeltaCounts) -> DeltaCounts:
        self.elements += other.elements
        for mine, theirs in zip(self.per_expert, other.per_expert, strict=True):
            for j in range(3):
                mine[j] += theirs[j]
        self.merged_changed += other.merged_changed
        self.merged_rounded_back += other.merged_rounded_back
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "elements": self.elements,
            "per_expert": self.per_expert,
            "merged_changed": self.merged_changed,
            "merged_rounded_back": self.merged_rounded_back,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeltaCounts:
        return cls(
            len(data["per_expert"]),
            data["elements"],
            [list(r) for r in data["per_expert"]],
            data["merged_changed"],
            data["merged_rounded_back"],
        )


def _bits(x: Any) -> Any:
    import torch

    return x.view(getattr(torch, _INT_VIEW[x.element_size()]))


def _differs(a: Any, b: Any, dtype: Any) -> Any:
    """1 where the stored bits of a and b differ, else 0 (integer arithmetic, no boolean tensors)."""
    return (_bits(a) - _bits(b)).clamp_(-1, 1).abs_().to(dtype)


@lru_cache(maxsize=64)
def _code_bits(n: int) -> Any:
    """[2**(n+2), n+2] 0/1 matrix: which flag bits each code value has."""
    import torch

    codes = torch.arange(1 << (n + 2), dtype=torch.int64)
    return torch.stack([(codes >> i) & 1 for i in range(n + 2)], dim=1)


def block_counts(base: Any, experts: tuple[Any, ...], merged: Any, out: Any) -> DeltaCounts:
    """Count one block. `out` is the merged block already cast to the output dtype (same device).

    Every element gets a code: bit i set when expert i changed it, bit n when the output equals the base,
    bit n+1 when additionally the fp32 merge differs from the base (it rounded back). One histogram of
    the codes gives every counter; all per-element work is cheap integer arithmetic.
    """
    import torch

    n = len(experts)
    kind = torch.int16 if n <= 13 else torch.int32
    base_out = base if base.dtype == out.dtype else base.to(out.dtype)
    same = 1 - _differs(out, base_out, kind)
    differs = torch.nan_to_num_(torch.sub(merged, base.to(torch.float32)).sign_().abs_(), nan=1.0).to(kind)
    code = same.mul(1 << n).add_(differs.mul_(same), alpha=1 << (n + 1))
    for i, e in enumerate(experts):
        code.add_(_differs(e, base, kind), alpha=1 << i)
    hist = torch.bincount(code, minlength=1 << (n + 2)).cpu()
    flags = _code_bits(n)
    per_flag = (hist[:, None] * flags).sum(0)  # elements with each flag bit
    same_flag, rounded_flag = flags[:, n].bool(), flags[:, n + 1].bool()
    counts = DeltaCounts(n, elements=base.numel())
    for i, row in enumerate(counts.per_expert):
        changed = flags[:, i].bool()
        row[0] = int(per_flag[i])
        row[1] = int(hist[changed & same_flag].sum())
        row[2] = int(hist[changed & rounded_flag].sum())
    counts.merged_rounded_back = int(per_flag[n + 1])
    counts.merged_changed = base.numel() - int(per_flag[n]) + counts.merged_rounded_back
    return counts


def summarize(counts: DeltaCounts, names: list[str], warn_at: float) -> tuple[dict[str, Any], list[str]]:
    """Report dict (fractions included) and warnings for experts whose changes mostly round back."""
    report: dict[str, Any] = {"elements": counts.elements, "experts": {}}
    warnings = []
    for name, (changed, vanished, rounded) in zip(names, counts.per_expert, strict=True):
        frac = rounded / changed if changed else 0.0
        report["experts"][name] = {
            "changed": changed,
            "changed_fraction": changed / counts.elements if counts.elements else 0.0,
            "vanished": vanished,
            "vanished_fraction": vanished / changed if changed else 0.0,
            "rounded_back": rounded,
            "rounded_back_fraction": frac,
        }
        if frac > warn_at:
            warnings.append(
                f"expert {name!r}: {frac:.1%} of its {changed} changed weights round back to the base value in the "
                f"output dtype (consider --dtype fp32 or a larger lambda)"
            )
    mc = counts.merged_changed
    report["merged_changed"] = mc
    report["merged_rounded_back"] = counts.merged_rounded_back
    report["merged_rounded_back_fraction"] = counts.merged_rounded_back / mc if mc else 0.0
    return report, warnings
