"""The SRHT: exactly S·H·D, orthonormal rows, streaming-invariant, norm-preserving within the JL bound, seeds
sharing D but uncorrelated."""

from __future__ import annotations

import math

import pytest
import torch

from m2rl_slime.analyze.weights.srht import Srht, hadamard


def _matrix(p: Srht, d: int, seed: int = 0) -> torch.Tensor:
    """The k x d matrix of one seed's projection, by projecting the basis vectors."""
    return p.project(torch.eye(d), 0)[seed].T


def _dense(p: Srht, d: int, seed: int = 0) -> torch.Tensor:
    h = hadamard(p.n).double() / math.sqrt(p.n)
    return (h[list(p.rows[seed])] * p.signs(0, p.n).double())[:, :d]


@pytest.mark.parametrize("d", [8, 64, 1024, 4096])
def test_rows_are_exactly_orthonormal(d):
    """d a power of two: no padding, S·H·D (k x d) has orthonormal rows; sub-blocks (d > 1024) included."""
    p = Srht.build("model.layers.0.mlp.up_proj.weight", d, seed=3, k=min(16, d))
    m = _matrix(p, d)
    assert torch.equal(m, _dense(p, d))  # exactly the dense S·H·D, entries ±1/sqrt(N)
    gram = m @ m.T
    assert torch.allclose(gram, torch.eye(p.k, dtype=gram.dtype), atol=1e-12)


def test_padding_is_the_transform_of_the_zero_padded_vector():
    d = 3000
    p = Srht.build("t", d, seed=0, k=64)
    assert p.n == 4096
    assert torch.allclose(_matrix(p, d), _dense(p, d), atol=1e-12)


def test_small_tensors_keep_at_most_n_rows():
    p = Srht.build("norm", 100, seed=0, k=256)
    assert (p.n, p.k) == (128, 128)  # a full rotation: projected cosines are exact
    x = torch.randn(2, 100, dtype=torch.float32)
    y = p.project(x, 0)[0]
    assert torch.allclose(y.norm(dim=1), x.double().norm(dim=1), rtol=1e-5)


def test_one_sign_vector_per_tensor_and_one_row_set_per_seed():
    a = Srht.build("t", 10_000, seed=1, k=256, seeds=3)
    assert a == Srht.build("t", 10_000, seed=1, k=256, seeds=3)
    assert a.rows[1:] == Srht.build("t", 10_000, seed=2, k=256, seeds=2).rows  # seed s: rows of (s, tensor)
    assert a.key == Srht.build("t", 10_000, seed=1, k=256).key != Srht.build("t", 10_000, seed=2, k=256).key
    assert len(set(a.rows)) == 3
    assert a.key != Srht.build("u", 10_000, seed=1, k=256).key
    assert torch.equal(a.signs(0, 100_000), torch.cat([a.signs(0, 65536), a.signs(65536, 100_000)]))


def test_every_seed_is_its_dense_transform():
    d = 3000
    p = Srht.build("t", d, seed=4, k=32, seeds=3)
    for s in range(3):
        assert torch.allclose(_matrix(p, d, s), _dense(p, d, s), atol=1e-12)


def test_streaming_blocks_equal_one_block():
    d = 200_000
    p = Srht.build("t", d, seed=0, k=256, seeds=2)
    x = torch.randn(3, d, generator=torch.Generator().manual_seed(0))
    whole = p.project(x, 0)
    parts = sum(p.project(x[:, s : s + 65536], s) for s in range(0, d, 65536))
    scale = float(whole.abs().mean())  # float32 transforms: rounding relative to the typical output
    assert torch.allclose(whole, parts, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("shared", [False, True])
def test_norms_and_inner_products_within_the_jl_bound(shared):
    """For k = 256 and eps = 0.4, P(|N/k |Px|^2 / |x|^2 - 1| > eps) <= 2 exp(-k (eps^2/2 - eps^3/3) / 2) ~ 1e-3.

    `shared`: the 20 seeds of one tensor share D (as the analysis projects); their mean must still
    approach the exact value as independent projections do, i.e. the seeds are uncorrelated.
    """
    d, k, eps, seeds = 5000, 256, 0.4, 20
    g = torch.Generator().manual_seed(5)
    x = torch.randn(d, generator=g)
    y = 0.6 * x + 0.8 * torch.randn(d, generator=g)
    if shared:
        projected = Srht.build("t", d, seed=0, k=k, seeds=seeds).project(torch.stack([x, y]), 0)
    else:
        projected = torch.cat([Srht.build("t", d, seed=s, k=k).project(torch.stack([x, y]), 0) for s in range(seeds)])
    ratios, cosines = [], []
    for px, py in projected * math.sqrt(Srht.build("t", d, 0, k).n / k):
        ratios.append(float(px @ px) / float(x.double() @ x.double()))
        cosines.append(float(px @ py / (px.norm() * py.norm())))
    assert all(abs(r - 1) < eps for r in ratios)
    assert abs(sum(ratios) / len(ratios) - 1) < 3 * math.sqrt(2 / k) / math.sqrt(len(ratios))  # unbiased
    exact = float(x @ y / (x.norm() * y.norm()))
    sd = math.sqrt((1 - exact**2) / k)
    assert all(abs(c - exact) < 4 * sd for c in cosines)
    assert abs(sum(cosines) / len(cosines) - exact) < 4 * sd / math.sqrt(len(cosines))
    spread = math.sqrt(sum((c - sum(cosines) / seeds) ** 2 for c in cosines) / (seeds - 1))
    assert 0.5 * sd < spread < 1.6 * sd  # the seeds scatter like independent projections
