"""Test helpers of this directory (the event-file writer `tfevents`, the planted checkpoints `planted`) are
importable by name, as is the merge tests' tiny Qwen3 checkpoint builder `merge_ckpt`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "merge"))


@pytest.fixture()
def one_torch_thread():
    """Tiny tensors: torch's intra-op threads only add contention."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture()
def quiet(one_torch_thread):
    """WeightsOptions without a progress bar (keyword overrides allowed)."""
    from m2rl_slime.analyze.weights import WeightsOptions

    return lambda **kw: WeightsOptions(progress=False, **kw)


@pytest.fixture(scope="session")
def family(tmp_path_factory):
    """(base dir, {expert: dir}): the merge tests' random bf16 family, three experts, tied embeddings."""
    from merge_ckpt import make_family

    return make_family(tmp_path_factory.mktemp("family"))
