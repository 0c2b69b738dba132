"""DARE (Yu et al. 2024, "Language Models are Super Mario"): drop each delta element with probability p
and rescale the survivors by exactly 1/(1-p).

Randomness is counter-based, so a mask never depends on the order in which tensors, chunks or blocks are
processed, on the thread count, or on the device. Each tensor is cut into fixed 65536-element blocks;
block j of expert e in tensor t draws its uniforms from a Philox-4x64 generator keyed by
``(blake2b-64(seed, t, e), j)``. The 32-bit uniforms u decide ``drop = u < round(p * 2**32)``. Masks are
always drawn on the CPU (numpy's Philox, whose raw stream is stable across numpy versions) and moved to
the compute device. Experts are keyed by *name*, so reordering ``--expert`` flags keeps every mask.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from ..select import GROUP
from .base import f32, true_div_


@lru_cache(maxsize=4096)
def stream_key(seed: int, tensor: str, expert: str) -> int:
    """64-bit key of the random stream of one (seed, tensor, expert)."""
    h = hashlib.blake2b(f"m2rl-dare\0{seed}\0{tensor}\0{expert}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def drop_threshold(p: float) -> int:
    """The uint32 cut: an element is dropped when its 32-bit uniform is below it."""
    return min(round(p * 2**32), 2**32 - 1) if p > 0 else 0


def keep_mask(seed: int, tensor: str, expert: str, start: int, stop: int, p: float) -> Any:
    """fp32 CPU tensor: 1.0 where elements [start, stop) of (tensor, expert) survive DARE with drop rate p, else 0.0.

    Args:
        start: First element; must be a multiple of 65536.
    """
    import numpy as np
    import torch

    if start % GROUP:
        raise ValueError(f"DARE block start {start} is not a multiple of {GROUP}")
    key = stream_key(seed, tensor, expert)
    cut = np.uint32(drop_threshold(p))
    out = np.empty(stop - start, dtype=np.float32)
    for j in range(start // GROUP, -(-stop // GROUP)):
        raw = np.random.Philox(key=np.array([key, j], dtype=np.uint64)).random_raw(GROUP // 2)
        u = raw.view(np.uint32)
        lo = j * GROUP - start
        n = min(GROUP, stop - j * GROUP)
        np.greater_equal(u[:n], cut, out=out[lo : lo + n], casting="unsafe")
    return torch.from_numpy(out)


def dare(delta: Any, block: Any, i: int, p: float, rescale: bool) -> Any:
    """DARE of expert i's fp32 delta over `block`: ``delta * m / (1 - p)`` with m ~ Bernoulli(1 - p).

    Modifies and returns `delta` (which must be a fresh tensor).
    """
    if p <= 0:
        return delta
    mask = keep_mask(block.seed, block.tensor, block.names[i], block.start, block.stop, p)
    delta.mul_(mask.to(delta.device))
    if rescale:
        true_div_(delta, f32(1.0 - p))
    return delta
