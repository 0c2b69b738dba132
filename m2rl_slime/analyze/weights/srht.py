"""Seeded subsampled randomized Hadamard transforms (SRHT): y_s = S_s H D x for seeds s, streamed over blocks.

* D is a ±1 vector, H the normalised Walsh-Hadamard matrix of order N = 2^ceil(log2 d) (x is padded with
  zeros), S_s picks k distinct rows, uniformly at random. S_s·H·D has exactly orthonormal rows on R^N: a
  random orthogonal projection (structured, not Haar). No matrix is ever built.
* One D per tensor name and one S_s per (tensor name, seed), derived from a stable hash, so every model
  is projected the same way and the result does not depend on tensor order, block sizes or threads.
  The seeds share D, so H·D·x is computed once and every seed only selects its rows. Each seed is still
  an SRHT with uniform D and S_s; given D, every seed's inner products are unbiased for the exact ones
  (H·D is orthogonal) and the seeds' row draws are independent, so the seeds are uncorrelated.
* Streaming: a block of x of length L (a power of two, starting at a multiple of L) meets only the
  columns [start, start + L) of H_N, and there H_N[r, start + e] = (-1)^popcount(r & start) · H_L[r mod L, e]
  (Sylvester ordering: start's bits and e's are disjoint). So each block is transformed once, W = H_L·D·x
  (a fast Walsh-Hadamard transform as a few batched numpy matmuls by 2- to 32-point Hadamard matrices), and
  every seed's rows r take ±W[r mod L]. The sum over blocks equals the full transform (up to float
  rounding) at O(d log L) cost, whatever the number of seeds. A block is transformed as pieces of at most
  2^14 elements (the same identity), which keeps the work in the CPU cache.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .config import GROUP
from .workspace import scratch

RADIX_BITS = 5  # at most a 32-point Hadamard matrix in the last transform stage
# blocks are transformed in 2^14-element pieces: 20 vectors of a piece stay in the CPU cache through the
# matmul stages (a 2^18-element block of 20 vectors: 22-23 ms in pieces, 27-31 ms at once; benchmarks/analyze_kernel.py)
SUB_BITS = 14


def _key(seed: int, tensor: str) -> int:
    digest = hashlib.blake2b(f"m2rl-srht\0{seed}\0{tensor}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=16)
def hadamard(n: int) -> Any:
    """The unnormalised Sylvester-Hadamard matrix of order n (a power of two), float32 (read-only)."""
    import numpy as np

    h = np.ones((1, 1), np.float32)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    h.flags.writeable = False
    return h


def radices(bits: int) -> list[int]:
    """The Hadamard orders of the transform stages for length 2^bits: a last stage of up to 32 points and
    stages of up to 8 points before it (for a 2^14 piece of 20 vectors, within noise of 16-32-32 stages;
    benchmarks/analyze_kernel.py compares them).
    """
    last = min(bits, RADIX_BITS)
    rest = bits - last
    stages = -(-rest // 3)
    return [1 << (rest // stages + (s >= stages - rest % stages)) for s in range(stages)] + [1 << last]


def fwht(x: Any) -> Any:
    """The unnormalised Walsh-Hadamard transform x·H_L of every row of x (V, L), L a power of two.

    H_L = H_a1 ⊗ ... ⊗ H_am (`radices`): each stage is one batched matmul along one axis of x viewed as
    (V, a1, ..., am), the last one from the right (long rows). Fresh outputs: numpy's matmul is slower
    writing into a given batched output.
    """
    import numpy as np

    v, n = x.shape
    orders = radices(n.bit_length() - 1)
    outer, inner = v, n
    for a in orders[:-1]:
        inner //= a
        x = np.matmul(hadamard(a), x.reshape(outer, a, inner))
        outer *= a
    return np.matmul(x.reshape(-1, orders[-1]), hadamard(orders[-1])).reshape(v, n)


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
    """The projections of one tensor, one per seed, sharing the sign vector D.

    Attributes:
        key: The 64-bit stream key of D (from the first seed and the tensor name).
        n: Padded length N (a power of two).
        rows: Per seed, the k selected rows of H_N, sorted.
    """

    key: int
    n: int
    rows: tuple[tuple[int, ...], ...]

    @classmethod
    def build(cls, tensor: str, numel: int, seed: int, k: int, seeds: int = 1) -> Srht:
        """Seeds `seed`, ..., `seed + seeds - 1`: seed s draws its rows from the key of (s, tensor)."""
        import numpy as np

        n = 1 << max(0, math.ceil(math.log2(max(numel, 1))))
        rows = []
        for s in range(seed, seed + seeds):
            key = np.array([_key(s, tensor), 1 << 63], dtype=np.uint64)
            rows.append(
                tuple(
                    int(r)
                    for r in np.sort(
                        np.random.Generator(np.random.Philox(key=key)).choice(n, size=min(k, n), replace=False)
                    )
                )
            )
        return cls(_key(seed, tensor), n, tuple(rows))

    @property
    def k(self) -> int:
        return len(self.rows[0])

    @property
    def seeds(self) -> int:
        return len(self.rows)

    def signs(self, start: int, stop: int) -> Any:
        """D on elements [start, stop) as float32 ±1 (independent of how the range is cut)."""
        import numpy as np

        parts = []
        for j in range(start // GROUP, (stop - 1) // GROUP + 1):
            raw = np.random.Philox(key=np.array([self.key, j], dtype=np.uint64)).random_raw(GROUP // 64)
            bits = np.unpackbits(raw.astype(np.uint64).view(np.uint8), bitorder="little")
            lo, hi = max(start, j * GROUP) - j * GROUP, min(stop, (j + 1) * GROUP) - j * GROUP
            parts.append(bits[lo:hi])
        bits = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return 1.0 - 2.0 * bits.astype(np.float32)

    def project(self, x: Any, start: int) -> Any:
        """Partial S_s·H·D x from a block: x is (V, n) float32 over elements [start, start + n), where start
        is a multiple of n rounded up to a power of two (as the analysis cuts blocks).

        Returns:
            (seeds, V, k) float64: this block's contribution; the projection is the sum over all blocks.
        """
        import numpy as np

        v, n = x.shape
        signs = self.signs(start, start + n)

        def fill(s0: int, s1: int, out: Any) -> None:
            np.multiply(x[:, s0:s1], signs[s0:s1], out=out)

        return self.project_pieces(fill, v, n, start)

    @staticmethod
    def padded(n: int) -> int:
        """The transform length of an n-element block: n rounded up to a power of two."""
        return 1 << max(0, (n - 1).bit_length())

    def project_pieces(self, fill: Callable[[int, int, Any], None], v: int, n: int, start: int) -> Any:
        """`project` of V vectors over elements [start, start + n) that are never materialised whole:
        ``fill(s0, s1, out)`` writes D·x on elements [start + s0, start + s1) of every vector into `out`
        ((V, s1 - s0) float32). The block is zero-padded to `padded(n)` (pieces past n are skipped).
        """
        import numpy as np

        length = self.padded(n)
        if start % length:
            raise ValueError(f"SRHT block at {start} of length {length}: the start must be a multiple of it")
        sub = min(length, 1 << SUB_BITS)  # transformed piece by piece (each piece stays in the CPU cache)
        rows = np.asarray(self.rows, dtype=np.int64).reshape(-1)  # every seed's rows, seed-major
        lo = rows % sub
        picked = np.zeros((v, rows.size), np.float64)
        piece = scratch("srht_piece", v, sub, np.float32)
        for s0 in range(0, min(n, length), sub):
            s1 = min(s0 + sub, n)
            fill(s0, s1, piece[:, : s1 - s0])
            piece[:, s1 - s0 :] = 0
            w = fwht(piece)
            # H_N[r, s + e] = ±H_sub[r mod sub, e] for the piece at s: the sign is the parity of r & s
            parity = popcount((rows & (start + s0)).astype(np.uint64)) & 1
            picked += w[:, lo] * (1.0 - 2.0 * parity.astype(np.float32))
        picked /= math.sqrt(self.n)
        return picked.reshape(v, self.seeds, self.k).transpose(1, 0, 2)
