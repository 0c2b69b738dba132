"""Exact streaming selection equals torch.kthvalue; tree sums do not depend on how values are split."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from m2rl_slime.merge.select import GROUP, RadixSelect, group_sums, tree_sum


def _values(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=g).abs() * torch.exp(10 * torch.randn(n, generator=g))
    v[torch.rand(n, generator=g) < 0.3] = 0.0  # many zeros, like sparse RL deltas
    v[:50] = v[50:100]  # duplicated values (ties at thresholds)
    v[100:110] = torch.tensor(1e-42)  # denormals
    return v.float()


def _select(streams, blocks, ks):
    sel = RadixSelect(len(streams))
    hist = sum(RadixSelect.pass1([s[a:b] for s in streams]) for a, b in blocks)
    sel.locate(hist, ks)
    hist2 = sum(sel.pass2([s[a:b] for s in streams]) for a, b in blocks)
    return sel.finish(hist2)


@pytest.mark.parametrize("split", [1, 9])
def test_radix_select_equals_kthvalue(split):
    n = 30_011
    streams = [_values(s, n) for s in range(3)]
    cuts = sorted({0, n, *torch.randint(0, n, (split - 1,), generator=torch.Generator().manual_seed(split)).tolist()})
    blocks = list(itertools.pairwise(cuts))
    for k in (1, 17, n // 5, n - 1, n):
        got = _select(streams, blocks, [k] * 3)
        want = [float(torch.kthvalue(s, n - k + 1).values) for s in streams]
        assert got == want, k


def test_radix_select_rejects_ranks_outside_the_data():
    with pytest.raises(ValueError):
        _select([torch.ones(10)], [(0, 10)], [11])


def test_group_and_tree_sums_are_split_invariant():
    x = _values(1, 5 * GROUP + 123).double() ** 2
    whole = tree_sum(group_sums(x))
    parts = torch.cat([group_sums(x[a : a + 2 * GROUP]) for a in range(0, x.numel(), 2 * GROUP)])
    assert tree_sum(parts) == whole
    assert math.isclose(whole, math.fsum(x.tolist()), rel_tol=1e-13)
    assert tree_sum(torch.zeros(0)) == 0.0
