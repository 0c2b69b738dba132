"""Uncertainty of the behaviour analyses: standard errors, Pearson's r with its t-test, seeded bootstraps.

Written here rather than taken from scipy (not in slime's image): the two-sided p-value of Pearson's r is
``I_{df/(df+t^2)}(df/2, 1/2)`` with ``t = r sqrt(df / (1 - r^2))`` and ``df = n - 2``; the regularised
incomplete beta function ``I_x(a, b)`` is evaluated by its continued fraction (modified Lentz), which
converges in a few dozen terms for these arguments. The tests pin it to closed forms (``df = 1, 2``) and
to the paper's Table 7 correlations. Bootstraps draw from a local ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..eval.stats import avg_at_k

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500
_BLOCK = 256


@dataclass(frozen=True, slots=True)
class MeanSE:
    """A mean over `n` units and its standard error (None for fewer than two units)."""

    value: float
    se: float | None
    n: int


def mean_se(values: Sequence[float]) -> MeanSE:
    """Mean and standard error (sample s.d. / sqrt(n)): the eval runner's Avg@K estimator, over any units.

    Raises:
        ValueError: no values.
    """
    estimate = avg_at_k(values)
    return MeanSE(estimate.avg, estimate.stderr, estimate.n)


def ratio_se(numerators: Sequence[float], denominators: Sequence[float]) -> MeanSE:
    """The ratio estimator sum(y) / sum(x) over units (y_i, x_i) with its delta-method standard error
    ``sqrt(sum((y_i - R x_i)^2) / (n (n - 1))) / mean(x)``: per-token means whose tokens come in
    sequences, the sequence being the independent unit.

    Raises:
        ValueError: no units, or the denominators sum to 0.
    """
    n = len(numerators)
    if n == 0 or n != len(denominators):
        raise ValueError("a ratio needs as many numerators as denominators, at least one")
    total = math.fsum(denominators)
    if total <= 0:
        raise ValueError("the denominators sum to 0")
    ratio = math.fsum(numerators) / total
    if n == 1:
        return MeanSE(ratio, None, 1)
    resid = math.fsum((y - ratio * x) ** 2 for y, x in zip(numerators, denominators))
    return MeanSE(ratio, math.sqrt(resid / (n * (n - 1))) / (total / n), n)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, _MAX_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            return result
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0 and 0.0 <= x <= 1.0):
        raise ValueError(f"betainc needs a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True, slots=True)
class Correlation:
    """Pearson's r over `n` pairs with its two-sided t-test; r and p are None (with `reason`) when undefined.

    Attributes:
        low, high: Bootstrap percentile interval of r (None when not computed or undefined).
        valid_resamples: Resamples whose r was defined (a resample with a constant side is not).
    """

    r: float | None
    p: float | None
    n: int
    df: int
    t: float | None = None
    low: float | None = None
    high: float | None = None
    resamples: int = 0
    valid_resamples: int = 0
    seed: int | None = None
    reason: str | None = None


def _pearson_r(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = math.fsum((a - mx) ** 2 for a in x)
    syy = math.fsum((b - my) ** 2 for b in y)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def pearson(
    x: Sequence[float], y: Sequence[float], *, resamples: int = 0, seed: int = 0, level: float = 0.95
) -> Correlation:
    """Pearson's r, the two-sided p of H0: rho = 0 (t-test, df = n - 2) and optionally a bootstrap interval
    (pairs resampled with replacement).

    Example:
        >>> c = pearson([1, 2, 3, 4], [1, 3, 2, 4])
        >>> round(c.r, 3), round(c.p, 3)
        (0.8, 0.2)
    """
    if len(x) != len(y):
        raise ValueError(f"pearson needs pairs: {len(x)} x values, {len(y)} y values")
    n = len(x)
    if n < 3:
        return Correlation(None, None, n, max(n - 2, 0), reason=f"n = {n} pairs: a p-value needs at least 3")
    r = _pearson_r(x, y)
    if r is None:
        return Correlation(None, None, n, n - 2, reason="one variable is constant: r is undefined")
    df = n - 2
    t = math.inf if abs(r) == 1.0 else r * math.sqrt(df / (1.0 - r * r))
    p = t_two_sided_p(t, df)
    if resamples <= 0:
        return Correlation(r, p, n, df, t)
    import numpy as np

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    stat = lambda idx: _pearson_r(xs[idx].tolist(), ys[idx].tolist())  # noqa: E731
    low, high, valid = bootstrap_interval(stat, n, resamples=resamples, seed=seed, level=level)
    return Correlation(r, p, n, df, t, low, high, resamples, valid, seed)


def bootstrap_interval(
    stat: Callable[..., float | None], n: int, *, resamples: int, seed: int, level: float = 0.95
) -> tuple[float | None, float | None, int]:
    """Percentile interval of `stat(indices)` over `resamples` draws of n indices with replacement.

    Resamples where `stat` is undefined (None or NaN) are dropped and counted out of the returned number of
    valid resamples; the interval is None when none is valid.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, resamples, _BLOCK):
        for idx in rng.integers(0, n, size=(min(_BLOCK, resamples - start), n)):
            value = stat(idx)
            if value is not None and math.isfinite(value):
                values.append(value)
    if not values:
        return None, None, 0
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(values), [tail, 1.0 - tail])
    return float(low), float(high), len(values)
