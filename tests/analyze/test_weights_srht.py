"""The SRHT: exactly S·H·D, orthonormal rows, streaming-invariant, norm-preserving within the JL bound, seeds
sharing D but uncorrelated."""

from __future__ import annotations

import math

import numpy as np
import pytest

from m2rl_slime.analyze.weights.srht import Srht, hadamard


def _matrix(p: Srht, d: int, seed: int = 0) -> np.ndarray:
    """The k x d matrix of one seed's projection, by projecting the basis vectors."""
    return p.project(np.eye(d, dtype=np.float32), 0)[seed].T


def _dense(p: Srht, d: int, seed: int = 0) -> np.ndarray:
    h = hadamard(p.n).astype(np.float64) / math.sqrt(p.n)
    return (h[list(p.rows[seed])] * p.signs(0, p.n).astype(np.float64))[:, :d]


@pytest.mark.parametrize("d", [8, 64, 1024, 4096])
def test_rows_are_exactly_orthonormal(d):
    """d a power of two: no padding, S·H·D (k x d) has orthonormal rows; sub-blocks (d > 1024) included."""
    p = Srht.build("model.layers.0.mlp.up_proj.weight", d, seed=3, k=min(16, d))
    m = _matrix(p, d)
    assert np.array_equal(m, _dense(p, d))  # exactly the dense S·H·D, entries ±1/sqrt(N)
    gram = m @ m.T
    assert np.allclose(gram, np.eye(p.k), atol=1e-12)


def test_padding_is_the_transform_of_the_zero_padded_vector():
    d = 3000
    p = Srht.build("t", d, seed=0, k=64)
    assert p.n == 4096
    assert np.allclose(_matrix(p, d), _dense(p, d), atol=1e-12)


def test_small_tensors_keep_at_most_n_rows():
    p = Srht.build("norm", 100, seed=0, k=256)
    assert (p.n, p.k) == (128, 128)  # a full rotation: projected cosines are exact
    x = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    y = p.project(x, 0)[0]
    assert np.allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x.astype(np.float64), axis=1), rtol=1e-5)


def test_one_sign_vector_per_tensor_and_one_row_set_per_seed():
    a = Srht.build("t", 10_000, seed=1, k=256, seeds=3)
    assert a == Srht.build("t", 10_000, seed=1, k=256, seeds=3)
    assert a.rows[1:] == Srht.build("t", 10_000, seed=2, k=256, seeds=2).rows  # seed s: rows of (s, tensor)
    assert a.key == Srht.build("t", 10_000, seed=1, k=256).key != Srht.build("t", 10_000, seed=2, k=256).key
    assert len(set(a.rows)) == 3
    assert a.key != Srht.build("u", 10_000, seed=1, k=256).key
    assert np.array_equal(a.signs(0, 100_000), np.concatenate([a.signs(0, 65536), a.signs(65536, 100_000)]))


def test_every_seed_is_its_dense_transform():
    d = 3000
    p = Srht.build("t", d, seed=4, k=32, seeds=3)
    for s in range(3):
        assert np.allclose(_matrix(p, d, s), _dense(p, d, s), atol=1e-12)


def test_streaming_blocks_equal_one_block():
    d = 200_000
    p = Srht.build("t", d, seed=0, k=256, seeds=2)
    x = np.random.default_rng(0).standard_normal((3, d)).astype(np.float32)
    whole = p.project(x, 0).copy()  # the next calls reuse the scratch buffers
    parts = sum(p.project(np.ascontiguousarray(x[:, s : s + 65536]), s).copy() for s in range(0, d, 65536))
    scale = float(np.abs(whole).mean())  # float32 transforms: rounding relative to the typical output
    assert np.allclose(whole, parts, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("shared", [False, True])
def test_norms_and_inner_products_within_the_jl_bound(shared):
    """For k = 256 and eps = 0.4, P(|N/k |Px|^2 / |x|^2 - 1| > eps) <= 2 exp(-k (eps^2/2 - eps^3/3) / 2) ~ 1e-3.

    `shared`: the 20 seeds of one tensor share D (as the analysis projects); their mean must still
    approach the exact value as independent projections do, i.e. the seeds are uncorrelated.
    """
    d, k, eps, seeds = 5000, 256, 0.4, 20
    g = np.random.default_rng(5)
    x = g.standard_normal(d).astype(np.float32)
    y = (0.6 * x + 0.8 * g.standard_normal(d)).astype(np.float32)
    if shared:
        projected = Srht.build("t", d, seed=0, k=k, seeds=seeds).project(np.stack([x, y]), 0).copy()
    else:
        projected = np.concatenate(
            [Srht.build("t", d, seed=s, k=k).project(np.stack([x, y]), 0).copy() for s in range(seeds)]
        )
    ratios, cosines = [], []
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for px, py in projected * math.sqrt(Srht.build("t", d, 0, k).n / k):
        ratios.append(float(px @ px) / float(x64 @ x64))
        cosines.append(float(px @ py / (np.linalg.norm(px) * np.linalg.norm(py))))
    assert all(abs(r - 1) < eps for r in ratios)
    assert abs(sum(ratios) / len(ratios) - 1) < 3 * math.sqrt(2 / k) / math.sqrt(len(ratios))  # unbiased
    exact = float(x64 @ y64 / (np.linalg.norm(x64) * np.linalg.norm(y64)))
    sd = math.sqrt((1 - exact**2) / k)
    assert all(abs(c - exact) < 4 * sd for c in cosines)
    assert abs(sum(cosines) / len(cosines) - exact) < 4 * sd / math.sqrt(len(cosines))
    spread = math.sqrt(sum((c - sum(cosines) / seeds) ** 2 for c in cosines) / (seeds - 1))
    assert 0.5 * sd < spread < 1.6 * sd  # the seeds scatter like independent projections
