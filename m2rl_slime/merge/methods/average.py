"""Average of the experts (optionally with the base): the paper's "average merging"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from .base import Block, MergeMethod, f32, true_div_


@dataclass(frozen=True, slots=True)
class AverageParams:
    """Parameters of `average`."""

    include_base: bool = field(default=False, metadata={"help": "also average in the base model"})
    base_weight: float = field(default=1.0, metadata={"help": "weight of the base when --include-base"})


def _apply(block: Block, p: AverageParams, stats: Any) -> Any:
    import torch

    acc = None
    total = 0.0
    terms = [(block.base, p.base_weight)] if p.include_base else []
    terms += list(zip(block.experts, block.weights, strict=True))
    for x, w in terms:
        x32 = x.to(torch.float32, copy=acc is None)
        if w != 1.0:
            x32 = torch.mul(x32, f32(w))
        acc = x32 if acc is None else acc.add_(x32)
        total += w
    return true_div_(acc, f32(total))


def _check(p: AverageParams, weights: Sequence[float]) -> None:
    if any(w <= 0 for w in weights) or p.base_weight <= 0:
        raise ConfigError("average needs positive expert weights (and a positive base_weight)")


AVERAGE = MergeMethod(
    name="average",
    summary="weighted mean of the experts (the base too with --include-base)",
    formula=(
        "theta = sum_i w_i theta_i / sum_i w_i        (w_i = expert weights, default 1)\n"
        "with include_base: theta = (w_b theta_b + sum_i w_i theta_i) / (w_b + sum_i w_i)"
    ),
    params=AverageParams,
    reference="https://arxiv.org/abs/2203.05482 (model soups); M2RL/MergeLM average_merging",
    apply=_apply,
    check=_check,
)
