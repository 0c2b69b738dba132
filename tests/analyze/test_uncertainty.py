"""Pearson's r and its t-test p without scipy: the incomplete beta against closed forms, a hand-computed
example, the paper's Table 7 correlations (F3: r = -0.534 -> p ~ 0.14, r = +0.628 -> p ~ 0.07 at n = 9),
and seeded bootstraps."""

from __future__ import annotations

import math

import pytest

from m2rl_slime.analyze.uncertainty import betainc, mean_se, pearson, t_two_sided_p


@pytest.mark.parametrize("x", [0.0, 0.01, 0.2, 0.5, 0.77, 0.999, 1.0])
def test_betainc_closed_forms(x):
    assert betainc(0.5, 0.5, x) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)), abs=1e-12)
    assert betainc(1.0, 1.0, x) == pytest.approx(x, abs=1e-12)
    assert betainc(2.0, 3.0, x) == pytest.approx(6 * x**2 - 8 * x**3 + 3 * x**4, abs=1e-12)  # integer a, b


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 12.0, 400.0])
def test_t_test_p_closed_forms(t):
    assert t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)  # Cauchy
    assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert t_two_sided_p(-t, 2) == t_two_sided_p(t, 2)


def test_large_df_approaches_the_normal_tail():
    assert t_two_sided_p(1.96, 100_000) == pytest.approx(math.erfc(1.96 / math.sqrt(2)), abs=1e-4)


def test_pearson_by_hand():
    # x = 1..5, y = 2,4,5,4,5: sxy = 6, sxx = 10, syy = 6 -> r = 6 / sqrt(60)
    c = pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    r = 6 / math.sqrt(60)
    t = r * math.sqrt(3 / (1 - r * r))
    assert c.r == pytest.approx(r) and c.t == pytest.approx(t) and c.df == 3 and c.n == 5
    # df = 3 closed form: p = 1 - (2/pi) (atan(u) + u / (1 + u^2)), u = t / sqrt(3)
    u = t / math.sqrt(3)
    assert c.p == pytest.approx(1 - 2 / math.pi * (math.atan(u) + u / (1 + u * u)), abs=1e-12)


@pytest.mark.parametrize(("r", "p"), [(-0.534, 0.1386), (0.628, 0.0701)])
def test_the_papers_table7_correlations_are_not_significant(r, p):
    """F3: with n = 9 models, r(gen, process) = -0.534 has p ~ 0.14 and r(gen, outcome) = +0.628 p ~ 0.07."""
    t = r * math.sqrt(7 / (1 - r * r))
    assert t_two_sided_p(t, 7) == pytest.approx(p, abs=5e-4)
    assert t_two_sided_p(t, 7) > 0.05


def test_undefined_cases_say_why():
    assert pearson([1, 2], [3, 4]).reason.startswith("n = 2")
    flat = pearson([1, 2, 3], [5, 5, 5])
    assert flat.r is None and "constant" in flat.reason
    assert pearson([1, 2, 3], [1, 2, 3]).p == 0.0


def test_bootstrap_is_seeded_and_brackets_r():
    x = [0.1, 0.4, 0.35, 0.8, 0.62, 0.9, 0.2, 0.55]
    y = [0.2, 0.5, 0.3, 0.7, 0.6, 0.95, 0.1, 0.5]
    a = pearson(x, y, resamples=2000, seed=3)
    b = pearson(x, y, resamples=2000, seed=3)
    assert (a.low, a.high) == (b.low, b.high)
    assert a.low < a.r < a.high <= 1.0
    assert 0 < a.valid_resamples <= 2000
    assert pearson(x, y, resamples=2000, seed=4).low != a.low


def test_mean_se():
    est = mean_se([1.0, 2.0, 3.0, 4.0])
    assert est.value == 2.5 and est.se == pytest.approx(math.sqrt(5 / 3 / 4))
    assert mean_se([7.0]).se is None
