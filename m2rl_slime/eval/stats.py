"""Avg@K with its standard error over items, and the paired bootstrap that says whether two models'
scores on the same items differ beyond noise.

Avg@K is the mean over items of each item's mean reward over its K samples; its standard error is the
sample standard deviation of those item means over sqrt(n_items). This treats items as the random unit
(the benchmark is a sample of possible items); the within-item sampling noise of K samples is part of
each item mean's spread. The paired bootstrap resamples items (the same ones for both models) with a
seeded generator and reports the 95% interval of the difference of the two Avg@K.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RESAMPLES = 10_000
_BLOCK = 500


@dataclass(frozen=True, slots=True)
class Estimate:
    """Avg@K over `n` items and its standard error (None with a single item)."""

    avg: float
    stderr: float | None
    n: int


def avg_at_k(item_means: Sequence[float]) -> Estimate:
    """Avg@K and its standard error from per-item means.

    Raises:
        ValueError: no items.
    """
    n = len(item_means)
    if n == 0:
        raise ValueError("Avg@K of no items")
    mean = math.fsum(item_means) / n
    if n == 1:
        return Estimate(mean, None, 1)
    var = math.fsum((x - mean) ** 2 for x in item_means) / (n - 1)
    return Estimate(mean, math.sqrt(var / n), n)


@dataclass(frozen=True, slots=True)
class Paired:
    """Difference a - b of two models' Avg@K on their common items, with a bootstrap interval.

    Attributes:
        within_noise: the 95% interval contains 0.
    """

    diff: float
    low: float
    high: float
    n_common: int
    resamples: int
    seed: int

    @property
    def within_noise(self) -> bool:
        return self.low <= 0.0 <= self.high


def paired_bootstrap(
    a: Mapping[str, float], b: Mapping[str, float], *, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> Paired:
    """Paired bootstrap over the items both models were scored on.

    Args:
        a, b: item uid -> the item's mean reward, for each model.
        resamples: Bootstrap resamples (drawn in blocks, so memory stays small for large benchmarks).
        seed: Seed of the generator (the same seed gives the same interval).
        level: Coverage of the percentile interval.

    Raises:
        ValueError: the models share no item.
    """
    import numpy as np

    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("the two models share no scored item")
    d = np.array([a[u] - b[u] for u in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, _BLOCK):
        size = min(_BLOCK, resamples - start)
        means[start : start + size] = d[rng.integers(0, len(d), size=(size, len(d)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Paired(float(d.mean()), float(low), float(high), len(common), resamples, seed)
