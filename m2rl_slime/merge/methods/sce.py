"""SCE: Select, Calculate, Erase (FuseChat, Wan et al. 2024, arXiv 2408.07990).

Two Select semantics exist and give very different models when ``select_topk < 1``:

* ``sce`` (mergekit/upstream, PR #493): the variance mask zeroes the deltas of every expert *before*
  Erase and the weighted mean, so unselected positions keep the base value.
* ``sce_fusechat`` (the original FuseChat code): the mask only enters the matrix-level weights; Erase and
  the mean use the unmasked deltas.

With ``select_topk = 1`` (the M2RL runs) both are the same merge. The squared-norm weights are float64
sums with a fixed pairwise order (`..select.tree_sum`), so they do not depend on chunking or device.

SCE has no per-expert weights: its experts are a set, and the result must not depend on the order of
``--expert``. fp32 sums are not associative, and bf16 RL deltas tie exactly all the time, so a variance
summed in the given order put tied positions on either side of the Select cut depending on that order.
Every sum here (variance, energies, sign election, weighted mean) therefore runs over the experts sorted
by name: one fixed order, free to compute, and the same bytes for every permutation of the experts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ...errors import ConfigError
from ..select import RadixSelect, group_sums, tree_sum
from .base import Block, MergeMethod, Passes, add, concat, true_div_
from .ties import keep_at_least, nonzero_divisor


@dataclass(frozen=True, slots=True)
class SceParams:
    """Parameters of `sce` and `sce_fusechat`."""

    select_topk: float = field(
        default=1.0, metadata={"help": "fraction of nonzero-variance positions selected (1 = no Select step)"}
    )
    min_energy: float = field(
        default=0.0,
        metadata={"help": "uniform weights when sum_i mean(delta_i^2) is at or below this (mergekit: 1e-6)"},
    )

    def validate(self) -> None:
        if not 0.0 < self.select_topk <= 1.0:
            raise ConfigError(f"select_topk must be in (0, 1], got {self.select_topk}")
        if self.min_energy < 0:
            raise ConfigError(f"min_energy must be >= 0, got {self.min_energy}")


@dataclass(frozen=True, slots=True)
class SceStats:
    """Per-tensor statistics: the variance cut (None: select all) and the fp32 expert weights (name order)."""

    cut: float | None
    weights: tuple[float, ...]


def _variance(deltas: Sequence[Any]) -> Any:
    """Population variance across experts, elementwise, in fp32 (expert order fixed)."""
    n = len(deltas)
    mean = deltas[0].clone()
    for d in deltas[1:]:
        mean.add_(d)
    true_div_(mean, float(n))
    var = None
    for d in deltas:
        sq = d.sub(mean)
        sq.mul_(sq)
        var = sq if var is None else var.add_(sq)
    # abs_ is a no-op on finite variances (never -0.0); it clears the sign bit of a NaN (from an Inf delta)
    # so that the radix select ranks NaN above every finite value instead of failing on a negative pattern.
    return true_div_(var, float(n)).abs_()


@lru_cache(maxsize=256)
def _name_order(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(sorted(range(len(names)), key=names.__getitem__))


def _deltas(block: Block) -> list[Any]:
    """Fresh fp32 deltas of every expert, in name order (see the module docstring)."""
    b32 = block.base32()
    return [block.delta(i, b32) for i in _name_order(block.names)]


def _selected(deltas: list[Any], cut: float | None) -> list[Any]:
    """Deltas multiplied by the Select mask [var >= cut] (the same tensors when nothing is cut)."""
    if cut is None:
        return deltas
    mask = keep_at_least(_variance(deltas), cut).sign_()  # var >= 0, cut > 0: 1.0 where var >= cut
    return [d.mul(mask) for d in deltas]


def _cut(passes: Passes, p: SceParams) -> float | None:
    if p.select_topk >= 1.0:
        return None

    def first(blk: Block) -> tuple[Any, int]:
        import torch

        var = _variance(_deltas(blk))
        return RadixSelect.pass1([var]), int(torch.count_nonzero(var))

    hist, nonzero = passes.fold(first, lambda a, r: r if a is None else (a[0] + r[0], a[1] + r[1]), None)
    k = int(p.select_topk * nonzero)
    if k == 0:
        return float("inf")
    select = RadixSelect(1)
    select.locate(hist, [k])
    hist2 = passes.fold(lambda blk: select.pass2([_variance(_deltas(blk))]), add, None)
    return select.finish(hist2)[0]


def _energies(block: Block, cut: float | None) -> Any:
    import torch

    out = []
    for d in _selected(_deltas(block), cut):
        x = d.to(torch.float64)
        out.append(group_sums(x.mul_(x)))
    return torch.stack(out).cpu()


def _tensor_stats(passes: Passes, p: SceParams, model_stats: Any) -> SceStats:
    import numpy as np
    import torch

    cut = _cut(passes, p)
    parts = passes.fold(lambda blk: _energies(blk, cut), concat, [])
    sums = torch.cat(parts, dim=1)
    energy = [tree_sum(row) for row in sums]
    total = 0.0
    for e in energy:
        total += e
    n = len(energy)
    if total == 0.0 or total / passes.numel <= p.min_energy:
        weights = tuple(float(np.float32(1.0 / n)) for _ in energy)
    else:
        weights = tuple(float(np.float32(e / total)) for e in energy)
    return SceStats(cut, weights)


def _merge(block: Block, deltas: list[Any], weights: Sequence[float]) -> Any:
    import torch

    majority = deltas[0].clone()
    for d in deltas[1:]:
        majority.add_(d)
    majority.sign_().add_(0.5).sign_()  # +1 where the sum is >= 0, else -1
    num = den = None
    for d, w in zip(deltas, weights, strict=True):
        agree = torch.mul(d, majority).sign_().relu_()  # 1.0 where sgn(d) = majority, else 0.0
        kept = torch.mul(d, agree).mul_(w)
        weight = agree.mul_(w)
        num = kept if num is None else num.add_(kept)
        den = weight if den is None else den.add_(weight)
    return num.div_(nonzero_divisor(den))


def _apply_sce(block: Block, p: SceParams, stats: SceStats) -> Any:
    deltas = _selected(_deltas(block), stats.cut)
    return _merge(block, deltas, stats.weights).add_(block.base32())


def _apply_fusechat(block: Block, p: SceParams, stats: SceStats) -> Any:
    return _merge(block, _deltas(block), stats.weights).add_(block.base32())


def _passes(p: SceParams) -> int:
    return 1 if p.select_topk >= 1.0 else 3


def _check(p: SceParams, weights: Sequence[float]) -> None:
    if any(w != 1.0 for w in weights):
        raise ConfigError("sce has no per-expert weight (its weights come from the deltas); remove the weights")


_FORMULA = (
    "delta_i = theta_i - theta_b;\n"
    "Select: s2 = Var_i(delta_i) (population, elementwise); S = [s2 >= t], t = exact k-th largest s2,\n"
    "        k = floor(select_topk * #(s2 != 0)) (S = 1 when select_topk = 1);\n"
    "        {scope};\n"
    "Calculate: eta_i = sum(D_i^2) / sum_j sum(D_j^2) over the tensor, D_i = S * delta_i\n"
    "        (uniform 1/N when the mean energy is <= min_energy or 0);\n"
    "Erase: gamma = +1 if sum_i X_i >= 0 else -1;  E_i = [sgn(X_i) = gamma];\n"
    "theta = theta_b + sum_i eta_i E_i X_i / sum_i eta_i E_i   (0 where no E_i);\n"
    "every sum over i runs in expert-name order: the bytes do not depend on the order of --expert"
)

SCE = MergeMethod(
    name="sce",
    summary="SCE with mergekit's Select (the variance mask also zeroes the merged deltas)",
    formula=_FORMULA.format(scope="X_i = D_i (masked deltas, mergekit semantics)"),
    params=SceParams,
    reference="https://arxiv.org/abs/2408.07990; mergekit merge_methods/sce.py",
    apply=_apply_sce,
    tensor_passes=_passes,
    tensor_stats=_tensor_stats,
    check=_check,
)

SCE_FUSECHAT = MergeMethod(
    name="sce_fusechat",
    summary="SCE with the original FuseChat Select (the variance mask only shapes the weights)",
    formula=_FORMULA.format(scope="X_i = delta_i (unmasked, FuseChat code semantics)"),
    params=SceParams,
    reference="https://arxiv.org/abs/2408.07990; FuseAI/FuseChat mergekit sce_merging.py",
    apply=_apply_fusechat,
    tensor_passes=_passes,
    tensor_stats=_tensor_stats,
    check=_check,
)
