"""The block kernel: the changed rule vs bitwise inequality, NaN/Inf handling, permutations, block cuts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m2rl_slime.analyze.weights.config import bitwise_equivalent
from m2rl_slime.analyze.weights.kernel import (
    Sums,
    TensorJob,
    _deltas,
    _pack,
    _permuted,
    _roll,
    block_sums,
    expected_rotated,
)


def _job(numel, bitwise, eta=1e-3, shifts=(), pairs=((0, 1),), dtype="BF16"):
    return TensorJob("t", numel, eta, bitwise, dtype, shifts, pairs)


def _np(t: torch.Tensor) -> np.ndarray:
    """A torch tensor as the kernel receives it: a numpy array of the storage type (bf16 as uint16 bits)."""
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(np.uint16)
    return t.contiguous().numpy()


def _deltas_t(job, base, experts, **kw):
    return _deltas(job, _np(base), [_np(e) for e in experts], **kw)


def _sums_t(job, start, base, experts):
    return block_sums(job, start, _np(base), [_np(e) for e in experts])


def _all_bf16_with_next():
    bits = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16)
    x = bits.view(torch.bfloat16)
    nxt = (bits + 1).view(torch.bfloat16)  # next value away from zero (same sign), or the sign flip at the ends
    keep = (
        torch.isfinite(x.float())
        & torch.isfinite(nxt.float())
        & (torch.sign(x.float()) * torch.sign(nxt.float()) >= 0)
    )
    keep &= (
        bits != -1
    )  # -1 + 1 wraps to +0 from the largest negative NaN pattern region; excluded by finiteness anyway
    return x[keep], nxt[keep]


@pytest.mark.parametrize("bitwise", [False, True])
def test_bf16_rule_equals_bitwise_inequality_exhaustively(bitwise):
    """Every finite bf16 value against its neighbour: the rule at eta=1e-3 always fires (2^-8 > 1e-3)."""
    x, nxt = _all_bf16_with_next()
    assert x.numel() > 60000
    assert bitwise_equivalent("BF16", 1e-3)
    _, mask, bad = _deltas_t(_job(x.numel(), bitwise), x, [nxt, x])
    assert bad.sum() == 0
    assert mask[0].all()  # distinct neighbours: changed
    assert not mask[1].any()  # identical: unchanged


def test_rule_path_equals_fast_path_on_random_bf16():
    g = torch.Generator().manual_seed(0)
    base = (0.05 * torch.randn(200_000, generator=g)).bfloat16()
    moved = torch.rand(200_000, generator=g) < 0.4
    expert = (base.float() + 1e-3 * torch.randn(200_000, generator=g) * moved).bfloat16()
    d1, m1, _ = _deltas_t(_job(base.numel(), False), base, [expert])
    d1, m1 = d1.copy(), m1.copy()  # the next call reuses the same scratch buffers
    d2, m2, _ = _deltas_t(_job(base.numel(), True), base, [expert])
    assert np.array_equal(m1, m2)
    assert np.array_equal(m1[0], (expert.view(torch.int16) != base.view(torch.int16)).numpy() & (d2[0] != 0))
    assert np.array_equal(d1, d2)
    assert np.array_equal(d2[0], (expert.float() - base.float()).numpy())  # the bit-shift upcast is exact


def test_signed_zero_is_not_a_change():
    base = torch.zeros(4, dtype=torch.bfloat16)
    expert = -torch.zeros(4, dtype=torch.bfloat16)
    assert not torch.equal(base.view(torch.int16), expert.view(torch.int16))
    for bitwise in (False, True):
        assert not _deltas_t(_job(4, bitwise), base, [expert])[1].any()


def test_fp16_eta_is_not_bitwise():
    """fp16 has 11 significand bits: 1 + 2^-10 differs from 1 by less than eta = 1e-3."""
    assert not bitwise_equivalent("F16", 1e-3)
    base = torch.tensor([1.0, 1.0], dtype=torch.float16)
    expert = torch.tensor([1.0 + 2**-10, 1.0 + 2**-8], dtype=torch.float16)
    _, mask, _ = _deltas_t(_job(2, False, dtype="F16"), base, [expert])
    assert mask[0].tolist() == [False, True]


def test_nonfinite_elements_are_counted_and_excluded():
    base = torch.tensor([1.0, float("nan"), 1.0, 1.0, 1.0], dtype=torch.bfloat16)
    a = torch.tensor([2.0, 2.0, float("inf"), 1.0, 3.0], dtype=torch.bfloat16)
    b = torch.tensor([2.0, 2.0, 2.0, float("-inf"), 3.0], dtype=torch.bfloat16)
    s = _sums_t(_job(5, True), 0, base, [a, b])
    assert s.nonfinite.tolist() == [1, 1, 1]
    assert s.changed.tolist() == [2, 3]  # a: 0 and 4; b: 0, 2, 4
    assert s.inter[0, 1] == 2
    assert np.isfinite(s.dot).all() and np.isfinite(s.sq).all()
    assert s.dot[0, 1] == pytest.approx(1.0 + 4.0)


def test_roll_is_a_permutation_within_each_group():
    rng = np.random.default_rng(0)
    numel = 65536 + 1000
    mask = rng.random((2, numel)) < 0.3
    rolled = _roll(mask, 0, numel, 12345)
    assert rolled.shape == mask.shape
    assert np.array_equal(rolled[:, :65536], np.roll(mask[:, :65536], 12345, axis=1))
    assert np.array_equal(rolled[:, 65536:], np.roll(mask[:, 65536:], 12345 % 1000, axis=1))


@pytest.mark.parametrize("shift", [1, 63, 64, 65, 12345, 65535])
def test_packed_rotation_equals_the_boolean_one(shift):
    rng = np.random.default_rng(shift)
    numel = 2 * 65536 + 1000
    mask = rng.random((3, numel)) < 0.4
    pairs = ((0, 1), (0, 2), (1, 2))
    shifts = (shift, 7, 64 * 5)
    got = _permuted(mask, _pack(mask), 0, numel, shifts, pairs)
    assert got.shape == (3, 3, 3)
    for t, s in enumerate(shifts):
        rolled = _roll(mask, 0, numel, s)
        for i, j in pairs:
            assert got[t, i, j] == int((mask[i] & rolled[j]).sum())


def test_block_cuts_do_not_change_the_counts():
    """One 196608-element block vs three 65536-element blocks: identical integers, sums equal to rounding."""
    g = torch.Generator().manual_seed(1)
    n = 3 * 65536 + 777
    base = (0.05 * torch.randn(n, generator=g)).bfloat16()
    experts = [(base.float() + 0.01 * torch.randn(n, generator=g) * (torch.rand(n, generator=g) < 0.5)).bfloat16()]
    experts.append((base.float() + 0.01 * torch.randn(n, generator=g) * (torch.rand(n, generator=g) < 0.3)).bfloat16())
    job = _job(n, True, shifts=(5, 40000))
    whole = _sums_t(job, 0, base, experts)
    parts = None
    for s in range(0, n, 65536):
        e = min(s + 65536, n)
        part = _sums_t(job, s, base[s:e], [x[s:e] for x in experts])
        parts = part if parts is None else parts.add(part)
    assert isinstance(parts, Sums)
    for key in ("changed", "inter", "perm", "nonfinite"):
        assert np.array_equal(getattr(whole, key), getattr(parts, key)), key
    np.testing.assert_allclose(whole.dot, parts.dot, rtol=1e-5)
    np.testing.assert_allclose(whole.sq, parts.sq, rtol=1e-5)


def _mean_over_rotations(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of |a ∧ roll_s(b)| over s = 1..L-1, every rotation counted (cyclic cross-correlation by FFT)."""
    n = a.size
    if n == 1:
        return float(a[0] & b[0])
    corr = np.fft.irfft(np.conj(np.fft.rfft(a.astype(float))) * np.fft.rfft(b.astype(float)), n)
    return float(np.rint(corr[1:]).sum()) / (n - 1)


@pytest.mark.parametrize("numel", [2 * 65536 + 1000, 65536, 1000, 1])
def test_expected_rotation_overlap_is_the_mean_over_every_rotation(numel):
    """The closed form of the permutation reference against all L-1 non-zero rotations of every group."""
    rng = np.random.default_rng(numel)
    density = np.linspace(0.05, 0.9, numel)[None, :]  # uneven: the groups differ
    mask = rng.random((3, numel)) < density * np.array([[1.0], [0.8], [0.5]])
    pairs = ((0, 1), (0, 2), (1, 2))
    job = _job(numel, True, pairs=pairs)
    base = torch.zeros(numel, dtype=torch.bfloat16)
    experts = [torch.from_numpy(m.astype(np.float32)).bfloat16() for m in mask]
    parts = None
    for s in range(0, numel, 65536):  # block by block, as the engine cuts them
        e = min(s + 65536, numel)
        part = _sums_t(job, s, base[s:e], [x[s:e] for x in experts])
        parts = part if parts is None else parts.add(part)
    got = expected_rotated(parts, numel)
    for i, j in pairs:
        want = sum(
            _mean_over_rotations(mask[i, g : g + 65536], mask[j, g : g + 65536]) for g in range(0, numel, 65536)
        )
        assert got[i, j] == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_permutation_draws_scatter_around_the_expectation():
    """The optional random draws are rotations of the same masks: their mean approaches the closed form."""
    rng = np.random.default_rng(3)
    numel = 4 * 65536
    mask = rng.random((2, numel)) < np.repeat([0.1, 0.7, 0.2, 0.5], 65536)[None, :]
    shifts = tuple(int(s) for s in rng.integers(1, 65536, size=16))
    s = _sums_t(
        _job(numel, True, shifts=shifts),
        0,
        torch.zeros(numel).bfloat16(),
        [torch.from_numpy(m).bfloat16() for m in mask],
    )
    expected = expected_rotated(s, numel)[0, 1]
    draws = s.perm[:, 0, 1]
    assert abs(draws.mean() - expected) < 4 * draws.std(ddof=1) / np.sqrt(len(draws)) + 1
    assert abs(expected - s.inter[0, 1]) < 0.01 * expected  # independent masks: the overlap is typical
