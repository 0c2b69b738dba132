"""The KL estimators against closed forms on toy categorical distributions: E_p[k1] = E_p[k3] = KL(p || q)
exactly (weighted enumeration), k3 >= 0 token by token, Monte Carlo means within their standard errors,
k3's lower variance for close models, and the per-token standard error treating sequences as units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from m2rl_slime.analyze.neighbours.estimators import SequenceTerms, estimate, sequence_terms
from m2rl_slime.analyze.uncertainty import ratio_se

P = np.array([0.5, 0.25, 0.125, 0.125])
Q = np.array([0.1, 0.2, 0.3, 0.4])


def kl(p, q) -> float:
    return float(np.sum(p * np.log(p / q)))


def test_expectations_under_p_equal_the_kl_exactly():
    """Enumerate the four outcomes with their probabilities: both estimators' expectation is KL(p||q)."""
    k1 = np.log(P) - np.log(Q)
    k3 = np.expm1(-k1) + k1
    assert float(np.sum(P * k1)) == pytest.approx(kl(P, Q), abs=1e-15)
    assert float(np.sum(P * k3)) == pytest.approx(kl(P, Q), abs=1e-15)
    assert (k3 >= 0).all() and (k1 < 0).any()  # k1 terms can be negative; k3 terms never are


def test_a_sample_with_exact_frequencies_gives_the_kl():
    """A response whose token counts are proportional to p: per-token k1 and k3 are KL(p||q)."""
    tokens = [0, 0, 0, 0, 1, 1, 2, 3]
    terms = sequence_terms(np.log(P[tokens]), np.log(Q[tokens]))
    assert terms.n_tokens == 8
    assert terms.k1 / 8 == pytest.approx(kl(P, Q), abs=1e-12)
    assert terms.k3 / 8 == pytest.approx(kl(P, Q), abs=1e-12)
    cell = estimate([terms, terms, terms])
    assert cell.get("k1", "token").value == pytest.approx(kl(P, Q), abs=1e-12)
    assert cell.get("k3", "sequence").value == pytest.approx(8 * kl(P, Q), abs=1e-12)
    assert cell.get("k1", "token").se == pytest.approx(0.0, abs=1e-12)


def test_monte_carlo_means_are_unbiased_and_k3_is_tighter_for_close_models():
    rng = np.random.default_rng(7)
    p = np.array([0.3, 0.3, 0.2, 0.2])
    q = np.array([0.28, 0.32, 0.21, 0.19])  # a close pair: k3's variance is far below k1's
    seqs = [rng.choice(4, size=50, p=p) for _ in range(400)]
    terms = [sequence_terms(np.log(p[s]), np.log(q[s])) for s in seqs]
    cell = estimate(terms)
    truth = kl(p, q)
    for name in ("k1", "k3"):
        est = cell.get(name, "token")
        assert abs(est.value - truth) < 4 * est.se, (name, est, truth)
        seq = cell.get(name, "sequence")
        assert abs(seq.value - 50 * truth) < 4 * seq.se
    assert cell.get("k3", "token").se < cell.get("k1", "token").se / 5
    assert all(t.k3 >= 0 for t in terms)


def test_ratio_standard_error_matches_the_delta_method_by_hand():
    y, x = [2.0, 4.0, 9.0], [1.0, 2.0, 3.0]
    r = 15.0 / 6.0
    resid = sum((yi - r * xi) ** 2 for yi, xi in zip(y, x))
    expected = math.sqrt(resid / (3 * 2)) / 2.0
    est = ratio_se(y, x)
    assert est.value == pytest.approx(r) and est.se == pytest.approx(expected)


def test_empty_and_mismatched_inputs():
    assert sequence_terms([], []) == SequenceTerms(0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="differ in length"):
        sequence_terms([0.0], [0.0, 0.0])
    with pytest.raises(ValueError):
        estimate([])
