"""Task arithmetic (Ilharco et al. 2023) and its DARE variant (Yu et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from .base import Block, MergeMethod, f32
from .dare import dare


@dataclass(frozen=True, slots=True)
class TAParams:
    """Parameters of `ta`."""

    lam: float = field(default=1.0, metadata={"help": "lambda, scale of the summed task vectors", "flag": "--lambda"})


@dataclass(frozen=True, slots=True)
class TADareParams:
    """Parameters of `ta_dare`."""

    lam: float = field(default=1.0, metadata={"help": "lambda, scale of the summed task vectors", "flag": "--lambda"})
    drop: float = field(default=0.8, metadata={"help": "DARE drop rate p in [0, 1) (mergekit density = 1 - p)"})
    rescale: bool = field(default=True, metadata={"help": "rescale kept deltas by exactly 1/(1-p)"})

    def validate(self) -> None:
        check_drop(self.drop)


def check_drop(p: float) -> None:
    """Raise ConfigError unless 0 <= p < 1."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"drop must be in [0, 1), got {p} (mergekit density = 1 - drop)")


def weighted_sum(block: Block, deltas: Any) -> Any:
    """sum_i w_i * d_i in fp32, in expert order (`deltas` yields fresh fp32 tensors; the first is reused)."""
    import torch

    acc = None
    for d, w in zip(deltas, block.weights, strict=True):
        if w != 1.0:
            d = torch.mul(d, f32(w))
        acc = d if acc is None else acc.add_(d)
    return acc


def finish(block: Block, b32: Any, tau: Any, lam: float) -> Any:
    """theta_b + lam * tau (tau is modified in place)."""
    if lam != 1.0:
        tau.mul_(f32(lam))
    return tau.add_(b32)


def _apply_ta(block: Block, p: TAParams, stats: Any) -> Any:
    b32 = block.base32()
    tau = weighted_sum(block, (block.delta(i, b32) for i in range(len(block.experts))))
    return finish(block, b32, tau, p.lam)


def _apply_ta_dare(block: Block, p: TADareParams, stats: Any) -> Any:
    b32 = block.base32()
    deltas = (dare(block.delta(i, b32), block, i, p.drop, p.rescale) for i in range(len(block.experts)))
    return finish(block, b32, weighted_sum(block, deltas), p.lam)


TA = MergeMethod(
    name="ta",
    summary="task arithmetic: base + lambda * sum of weighted task vectors",
    formula="delta_i = theta_i - theta_b;  theta = theta_b + lambda * sum_i w_i delta_i",
    params=TAParams,
    reference="https://arxiv.org/abs/2212.04089",
    apply=_apply_ta,
)

TA_DARE = MergeMethod(
    name="ta_dare",
    summary="task arithmetic on DARE-sparsified task vectors",
    formula=(
        "m_i ~ Bernoulli(1 - p) per element (counter-based seed per tensor/expert/65536-block);\n"
        "delta_i' = m_i * delta_i / (1 - p)   (exact rescale; no rescale with --no-rescale);\n"
        "theta = theta_b + lambda * sum_i w_i delta_i'"
    ),
    params=TADareParams,
    reference="https://arxiv.org/abs/2311.03099",
    apply=_apply_ta_dare,
    random=True,
)
