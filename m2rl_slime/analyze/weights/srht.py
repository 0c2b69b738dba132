"""Seeded subsampled randomized Hadamard transform (SRHT): y = S H D x, streamed over blocks of x.

* D is a ±1 vector, H the normalised Walsh-Hadamard matrix of order N = 2^ceil(log2 d) (x is padded with
  zeros), S picks k distinct rows, uniformly at random. S·H·D has exactly orthonormal rows on R^N: a random
  orthogonal projection (structured, not Haar). No matrix is ever built.
* One (D, S) per (tensor name, seed), derived from a stable hash, so every model is projected the same way
  and the result does not depend on tensor order, block sizes or threads.
* Streaming: H_N = H_C ⊗ H_h for sub-blocks of h = min(1024, N) elements. Each sub-block c' is transformed
  on its own (H_h as two small batched matmuls, O(h log h)-structured via H_a ⊗ H_b), and only the k
  selected outputs need the outer factor: y_r += H_C[c_r, c'] · z_c'[l_r] with r = c_r·h + l_r. The result
  equals the full transform (up to float rounding) at O(d log h + k·d/h) cost, block by block.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .config import GROUP
from .workspace import scratch

SUB_BLOCK = 1024


def _key(seed: int, tensor: str) -> int:
    digest = hashlib.blake2b(f"m2rl-srht\0{seed}\0{tensor}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=16)
def hadamard(n: int) -> Any:
    """The unnormalised Sylvester-Hadamard matrix of order n (a power of two), float32."""
    import torch

    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def popcount(x: Any) -> Any:
    """Bits set per element of an unsigned numpy integer array (numpy >= 2 has it built in)."""
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    b = np.ascontiguousarray(x)
    return table[b.view(np.uint8)].reshape(*b.shape, b.itemsize).sum(-1, dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Srht:
    """The projection of one tensor for one seed.

    Attributes:
        key: The 64-bit stream key of (seed, tensor name).
        n: Padded length N (a power of two).
        h: Sub-block length.
        rows: The k selected rows of H_N, sorted.
    """

    key: int
    n: int
    h: int
    rows: tuple[int, ...]

    @classmethod
    def build(cls, tensor: str, numel: int, seed: int, k: int) -> Srht:
        import numpy as np

        n = 1 << max(0, math.ceil(math.log2(max(numel, 1))))
        key = _key(seed, tensor)
        rng = np.random.Generator(np.random.Philox(key=np.array([key, 1 << 63], dtype=np.uint64)))
        rows = np.sort(rng.choice(n, size=min(k, n), replace=False))
        return cls(key, n, min(SUB_BLOCK, n), tuple(int(r) for r in rows))

    @property
    def k(self) -> int:
        return len(self.rows)

    def signs(self, start: int, stop: int) -> Any:
        """D on elements [start, stop) as float32 ±1 (independent of how the range is cut)."""
        import numpy as np
        import torch

        parts = []
        for j in range(start // GROUP, (stop - 1) // GROUP + 1):
            raw = np.random.Philox(key=np.array([self.key, j], dtype=np.uint64)).random_raw(GROUP // 64)
            bits = np.unpackbits(raw.astype(np.uint64).view(np.uint8), bitorder="little")
            lo, hi = max(start, j * GROUP) - j * GROUP, min(stop, (j + 1) * GROUP) - j * GROUP
            parts.append(bits[lo:hi])
        bits = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return torch.from_numpy(bits).to(torch.float32).mul_(-2.0).add_(1.0)

    def project(self, x: Any, start: int) -> Any:
        """Partial S·H·D x from a block: x is (V, n) float32 over elements [start, start + n), start % h == 0.

        Returns:
            (V, k) float64: this block's contribution; the projection is the sum over all blocks.
        """
        import numpy as np
        import torch

        v, n = x.shape
        padded = -(-n // self.h) * self.h
        y = scratch("srht_in", v, padded, torch.float32)
        torch.mul(x, self.signs(start, start + n), out=y[:, :n])
        y[:, n:] = 0
        a = 1 << (self.h.bit_length() - 1) // 2
        b = self.h // a
        half = scratch("srht_half", v, padded, torch.float32).view(-1, a, b)
        torch.matmul(hadamard(a), y.view(-1, a, b), out=half)
        z = torch.matmul(half, hadamard(b), out=scratch("srht_out", v, padded, torch.float32).view(-1, a, b))
        z = z.view(v, -1, self.h)
        rows = np.asarray(self.rows, dtype=np.int64)
        first = start // self.h
        subs = np.arange(first, first + z.shape[1], dtype=np.int64)
        parity = popcount((subs[:, None] & (rows // self.h)[None, :]).astype(np.uint64)) & 1
        sign = torch.from_numpy(1.0 - 2.0 * parity.astype(np.float32))  # H_C[c_r, c'] for this block's c'
        picked = z[:, :, torch.from_numpy(rows % self.h)]  # (V, sub-blocks, k)
        return (picked * sign).sum(1, dtype=torch.float64) / math.sqrt(self.n)
