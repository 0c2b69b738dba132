"""TIES-merging (Yadav et al. 2023) and TIES on DARE-sparsified deltas (Yu et al. 2024).

Trim keeps the elements whose magnitude is at least the exact k-th largest |delta_i| (k = floor(density*n));
ties at the threshold are all kept, as in the TIES reference code's ``kthvalue``. The threshold is per tensor
by default, or one per expert over the whole model (``trim_scope: model``, the TIES paper and the M2RL
code). Both are exact: a two-pass radix select over the fp32 bit patterns (see `..select`), never a sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ConfigError
from ..select import RadixSelect
from .base import Block, MergeMethod, Passes, add, f32, keep_count
from .dare import dare
from .task_arithmetic import check_drop, finish

_HELP_DENSITY = "fraction of each expert's deltas kept by the magnitude trim (TIES top-k: 0.2 keeps the top 20 percent; 1 = no trim)"
_HELP_SCOPE = "trim threshold per tensor, or one per expert over the whole model (two extra read passes)"
_HELP_NORM = "disjoint mean (true) or disjoint sum (false, mergekit dare_ties default)"


@dataclass(frozen=True, slots=True)
class TiesParams:
    """Parameters of `ties`."""

    density: float = field(default=0.2, metadata={"help": _HELP_DENSITY})
    trim_scope: Literal["tensor", "model"] = field(default="tensor", metadata={"help": _HELP_SCOPE})
    lam: float = field(default=1.0, metadata={"help": "lambda, scale of the merged task vector", "flag": "--lambda"})
    normalize: bool = field(default=True, metadata={"help": _HELP_NORM})

    def validate(self) -> None:
        check_density(self.density)


@dataclass(frozen=True, slots=True)
class TiesDareParams:
    """Parameters of `ties_dare`."""

    drop: float = field(default=0.8, metadata={"help": "DARE drop rate p in [0, 1) (mergekit density = 1 - p)"})
    rescale: bool = field(default=True, metadata={"help": "rescale kept deltas by exactly 1/(1-p)"})
    density: float = field(default=1.0, metadata={"help": _HELP_DENSITY + " applied after DARE"})
    trim_scope: Literal["tensor", "model"] = field(default="tensor", metadata={"help": _HELP_SCOPE})
    lam: float = field(default=1.0, metadata={"help": "lambda, scale of the merged task vector", "flag": "--lambda"})
    normalize: bool = field(default=True, metadata={"help": _HELP_NORM})

    def validate(self) -> None:
        check_density(self.density)
        check_drop(self.drop)


def check_density(d: float) -> None:
    """Raise ConfigError unless 0 < d <= 1."""
    if not 0.0 < d <= 1.0:
        raise ConfigError(f"density must be in (0, 1], got {d}")


def _sparse_deltas(block: Block, p: Any, b32: Any) -> list[Any]:
    """Fresh fp32 deltas of every expert, DARE-dropped for ties_dare."""
    out = []
    for i in range(len(block.experts)):
        d = block.delta(i, b32)
        if isinstance(p, TiesDareParams):
            d = dare(d, block, i, p.drop, p.rescale)
        out.append(d)
    return out


def _magnitudes(block: Block, p: Any) -> list[Any]:
    return [d.abs_() for d in _sparse_deltas(block, p, block.base32())]


def _thresholds(passes: Passes, p: Any) -> list[float]:
    """Exact per-expert k-th largest |delta| over everything `passes` visits (two passes)."""
    hist1 = passes.fold(lambda blk: RadixSelect.pass1(_magnitudes(blk, p)), add, None)
    select = RadixSelect(hist1.shape[0])
    select.locate(hist1, [keep_count(p.density, passes.numel)] * hist1.shape[0])
    hist2 = passes.fold(lambda blk: select.pass2(_magnitudes(blk, p)), add, None)
    return select.finish(hist2)


def _trims(p: Any) -> bool:
    return p.density < 1.0


def _tensor_passes(p: Any) -> int:
    return 2 if _trims(p) and p.trim_scope == "tensor" else 0


def _model_passes(p: Any) -> int:
    return 2 if _trims(p) and p.trim_scope == "model" else 0


def _tensor_stats(passes: Passes, p: Any, model_stats: Any) -> list[float] | None:
    if not _trims(p):
        return None
    return model_stats if p.trim_scope == "model" else _thresholds(passes, p)


def _apply(block: Block, p: Any, thresholds: list[float] | None) -> Any:
    import torch

    b32 = block.base32()
    deltas = _sparse_deltas(block, p, b32)
    if thresholds is not None:
        deltas = [keep_at_least(d, t) for d, t in zip(deltas, thresholds, strict=True)]
    elected = deltas[0].clone()
    for d in deltas[1:]:
        elected.add_(d)
    elected.sign_()
    num = den = None
    for d, w in zip(deltas, block.weights, strict=True):
        agree = torch.mul(d, elected).sign_().relu_()  # 1.0 where sgn(d) = gamma != 0, else 0.0
        kept = d.mul_(agree)
        if w != 1.0:
            kept.mul_(f32(w))
            agree.mul_(f32(w))
        num = kept if num is None else num.add_(kept)
        den = agree if den is None else den.add_(agree)
    if p.normalize:
        num.div_(nonzero_divisor(den))
    return finish(block, b32, num, p.lam)


def keep_at_least(d: Any, t: float) -> Any:
    """d where |d| >= t, else 0; t is an fp32 value. Float ops only: hardshrink keeps |d| > lambda, and
    lambda is the fp32 value just below t."""
    import numpy as np
    import torch.nn.functional as F

    if t <= 0:
        return d
    return F.hardshrink(d, float(np.nextafter(np.float32(t), np.float32(0))))


def nonzero_divisor(den: Any) -> Any:
    """den with zeros replaced by 1 (den >= 0), in place, without a boolean mask."""
    return den.add_(den.sign().neg_().add_(1.0))


def _check(p: Any, weights: Sequence[float]) -> None:
    if any(w <= 0 for w in weights):
        raise ConfigError("ties needs positive expert weights (the disjoint mean divides by their sum)")


_FORMULA = (
    "delta_i = theta_i - theta_b{dare};\n"
    "trim:  tau_i = delta_i * [|delta_i| >= t_i], t_i = exact k-th largest |delta_i|, k = floor(density * n),\n"
    "       n = elements of the tensor (trim_scope=tensor) or of the whole model (trim_scope=model);\n"
    "elect: gamma = sgn(sum_i tau_i)   (unweighted; sgn(0) = 0 -> no update there);\n"
    "merge: A_i = [sgn(tau_i) = gamma != 0];  tau = sum_i w_i A_i tau_i / sum_i w_i A_i  (0 where no A_i;\n"
    "       normalize=false: no division, a disjoint sum);\n"
    "theta = theta_b + lambda * tau"
)

TIES = MergeMethod(
    name="ties",
    summary="TIES: trim to top-k magnitude, elect sign by summed mass, disjoint mean",
    formula=_FORMULA.format(dare=""),
    params=TiesParams,
    reference="https://arxiv.org/abs/2306.01708",
    apply=_apply,
    tensor_passes=_tensor_passes,
    tensor_stats=_tensor_stats,
    model_passes=_model_passes,
    model_stats=_thresholds,
    check=_check,
)

TIES_DARE = MergeMethod(
    name="ties_dare",
    summary="TIES sign election and disjoint mean on DARE-sparsified deltas (trim optional, off by default)",
    formula=_FORMULA.format(
        dare=";\nDARE:  delta_i = m_i * delta_i / (1 - p), m_i ~ Bernoulli(1 - p) (counter-based seed; exact rescale)"
    ),
    params=TiesDareParams,
    reference="https://arxiv.org/abs/2311.03099",
    apply=_apply,
    tensor_passes=_tensor_passes,
    tensor_stats=_tensor_stats,
    model_passes=_model_passes,
    model_stats=_thresholds,
    check=_check,
    random=True,
)
