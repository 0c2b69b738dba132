"""Shared fixtures: tiny Qwen3-shaped base + experts written once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from merge_ckpt import EXPERTS, make_family, make_ulp_family


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: torch's intra-op threads only add contention (the merge pins them to 1 itself)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def family(tmp_path_factory):
    """(base dir, {expert: dir}), bf16, single-file checkpoints, tied embeddings."""
    return make_family(tmp_path_factory.mktemp("family"))


@pytest.fixture(scope="session")
def sharded_family(tmp_path_factory):
    """The same shapes, written as 3-shard checkpoints with an index."""
    return make_family(tmp_path_factory.mktemp("sharded"), shards=3)


@pytest.fixture(scope="session")
def ulp_family(tmp_path_factory):
    """Five bf16 experts whose deltas are a few ulps of the base: exact ties everywhere."""
    return make_ulp_family(tmp_path_factory.mktemp("ulp"))


@pytest.fixture()
def config_of():
    """Build a MergeConfig over a family."""
    from m2rl_slime.merge import ExpertSpec, MergeConfig

    def build(fam, method, params=None, weights=None, **kw):
        base, experts = fam
        specs = tuple(ExpertSpec(n, str(p), (weights or {}).get(n, 1.0)) for n, p in experts.items())
        return MergeConfig(method=method, base=str(base), experts=specs, params=params or {}, **kw)

    return build


@pytest.fixture()
def quiet():
    """MergeOptions without progress bars (keyword overrides allowed)."""
    from m2rl_slime.merge import MergeOptions

    return lambda **kw: MergeOptions(progress=False, **kw)


__all__ = ["EXPERTS"]
