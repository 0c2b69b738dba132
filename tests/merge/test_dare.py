"""DARE masks: counter-based, so independent of how a tensor is split; Bernoulli(1-p); keyed by name."""

from __future__ import annotations

import torch

from m2rl_slime.merge.methods.dare import drop_threshold, keep_mask
from m2rl_slime.merge.select import GROUP


def test_mask_does_not_depend_on_the_split():
    n = 3 * GROUP + 1000
    whole = keep_mask(0, "w", "math", 0, n, 0.8)
    parts = torch.cat([keep_mask(0, "w", "math", a, min(a + GROUP, n), 0.8) for a in range(0, n, GROUP)])
    assert torch.equal(whole, parts)
    assert torch.equal(keep_mask(0, "w", "math", GROUP, 2 * GROUP, 0.8), whole[GROUP : 2 * GROUP])


def test_mask_rate_and_keys():
    n = 4 * GROUP
    m = keep_mask(1, "w", "math", 0, n, 0.8)
    assert abs(m.float().mean().item() - 0.2) < 0.005
    assert not torch.equal(m, keep_mask(2, "w", "math", 0, n, 0.8))
    assert not torch.equal(m, keep_mask(1, "v", "math", 0, n, 0.8))
    assert not torch.equal(m, keep_mask(1, "w", "code", 0, n, 0.8))
    assert torch.equal(m, keep_mask(1, "w", "math", 0, n, 0.8))
    assert keep_mask(1, "w", "math", 0, n, 0.0).all()
    assert drop_threshold(0.5) == 2**31 and drop_threshold(0.0) == 0
