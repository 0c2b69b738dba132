"""The merge-method contract: a `Block` of inputs, whole-tensor/whole-model statistics passes, and a
pure per-block formula.

A method never sees files, chunks or threads. The driver hands it `Block`s (a contiguous element range
of one tensor, for the base and every expert, in their stored dtype) and, for statistics that need the
whole tensor (a trim threshold, a variance cut, squared norms), a `Passes` object whose `fold` runs one
pass over every block of the tensor (or of the whole model) and combines the per-block results in
block order. `apply` then maps one block to its merged fp32 values. Because every formula is
elementwise in fp32 (or an exact integer statistic), the output does not depend on how the driver
chunks, orders or parallelises the blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Block:
    """Element range [start, stop) of one flattened tensor, for the base and every expert.

    Attributes:
        tensor: Tensor name.
        start: First element (a multiple of 65536).
        stop: One past the last element.
        base: Base values, 1-D, stored dtype, on the compute device. Never modify in place.
        experts: Expert values, same layout. Never modify in place.
        names: Expert names (DARE keys its random stream on them).
        weights: Per-expert weights.
        seed: Merge seed.
    """

    tensor: str
    start: int
    stop: int
    base: Any
    experts: tuple[Any, ...]
    names: tuple[str, ...]
    weights: tuple[float, ...]
    seed: int

    def base32(self) -> Any:
        """Base values in fp32 (may alias `base` when it is already fp32: read only)."""
        import torch

        return self.base.to(torch.float32)

    def delta(self, i: int, base32: Any | None = None) -> Any:
        """A fresh fp32 tensor of expert i minus the base."""
        import torch

        b = self.base32() if base32 is None else base32
        return self.experts[i].to(torch.float32, copy=True).sub_(b)


class Passes(Protocol):
    """One statistics pass per `fold` call, over every block of a tensor (or of the whole model)."""

    numel: int

    def fold(self, fn: Callable[[Block], R], combine: Callable[[A, R], A], init: A) -> A:
        """Apply `fn` to every block (possibly in parallel) and combine the results in block order."""
        ...


@dataclass(frozen=True, slots=True)
class MergeMethod:
    """One merge method: formula, typed parameters and the three hooks the driver calls.

    Attributes:
        name: Registry name (``--method``).
        summary: One line for ``--help``.
        formula: The exact formula, as printed by ``--help`` and written to the manifest.
        params: Frozen dataclass of parameters; each field's metadata has ``help`` (and ``flag``).
        reference: Paper or code the formula comes from.
        apply: ``(block, params, tensor_stats) -> merged fp32 values of the block``.
        tensor_passes: ``params -> passes over a tensor before apply`` (0: no whole-tensor statistic).
        tensor_stats: ``(passes, params, model_stats) -> statistics`` consumed by apply.
        model_passes: ``params -> passes over the whole model before anything is written``.
        model_stats: ``(passes, params) -> statistics`` handed to every `tensor_stats` call.
        check: ``(params, weights) -> None``; raises ConfigError for combinations the formula rejects.
        random: Whether the method draws DARE masks (the seed matters).
    """

    name: str
    summary: str
    formula: str
    params: type
    reference: str
    apply: Callable[[Block, Any, Any], Any]
    tensor_passes: Callable[[Any], int] = field(default=lambda p: 0)
    tensor_stats: Callable[[Passes, Any, Any], Any] | None = None
    model_passes: Callable[[Any], int] = field(default=lambda p: 0)
    model_stats: Callable[[Passes, Any], Any] | None = None
    check: Callable[[Any, Sequence[float]], None] = field(default=lambda p, w: None)
    random: bool = False


def concat(parts: list[Any], part: Any) -> list[Any]:
    """`combine` for folds that collect per-block results in order."""
    parts.append(part)
    return parts


def add(total: Any, part: Any) -> Any:
    """`combine` for folds that sum integer counts (order-free)."""
    return part if total is None else total + part


def f32(x: float) -> float:
    """`x` rounded to the nearest fp32 value (as a Python float): the exact scalar every fp32 kernel applies."""
    import numpy as np

    return float(np.float32(x))


def true_div_(x: Any, value: float) -> Any:
    """x /= value with IEEE division on every device, in place.

    A plain Python scalar would not do: CUDA divides by a CPU scalar by multiplying with its reciprocal
    (one bit less exact, so CPU and CUDA outputs would differ). A 0-dim tensor on x's device is divided.
    """
    import torch

    return x.div_(torch.tensor(value, dtype=x.dtype, device=x.device))


def keep_count(density: float, numel: int) -> int:
    """Number of elements a density keeps: floor(density * numel), at least 1."""
    return max(1, int(density * numel))
