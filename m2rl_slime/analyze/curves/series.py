"""Scalar series of a run: collection in log order (with restarts) and TensorBoard's smoothing.

A resumed run logs again the steps between its last checkpoint and the crash. As TensorBoard does for
out-of-order steps, a point whose step is not after the last kept step of its tag discards the kept points
from that step on: the later log (the resumed run) wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Series:
    """One tag's points, by increasing step."""

    steps: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.steps)


def collect(points: Iterable[tuple[str, int, float]]) -> tuple[dict[str, Series], int]:
    """Group (tag, step, value) points given in log order into series; returns them and the points purged."""
    steps: dict[str, list[int]] = {}
    values: dict[str, list[float]] = {}
    purged = 0
    for tag, step, value in points:
        tag_steps = steps.setdefault(tag, [])
        tag_values = values.setdefault(tag, [])
        if tag_steps and step <= tag_steps[-1]:
            keep = len(tag_steps)
            while keep and tag_steps[keep - 1] >= step:
                keep -= 1
            purged += len(tag_steps) - keep
            del tag_steps[keep:], tag_values[keep:]
        tag_steps.append(step)
        tag_values.append(value)
    series = {tag: Series(tuple(steps[tag]), tuple(values[tag])) for tag in sorted(steps)}
    return series, purged


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's scalar smoothing: a debiased exponential moving average over the points in order.

    ``last = weight * last + (1 - weight) * v`` starting from 0, divided by ``1 - weight ** n`` (n the
    number of finite points so far), so the first point is not pulled towards 0. Non-finite values are
    passed through and do not enter the average; a constant series is returned unchanged. It smooths over
    point indices, not step distances (as TensorBoard does).

    Args:
        values: The raw values, in step order.
        weight: In [0, 1); 0 returns the values unchanged.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    finite = [v for v in values if math.isfinite(v)]
    if weight == 0.0 or not finite or min(finite) == max(finite):
        return list(values)
    out, last, count = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1.0 - weight) * v
        count += 1
        out.append(last / (1.0 - weight**count))
    return out
