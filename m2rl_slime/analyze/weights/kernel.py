"""Exact statistics of one block of one tensor across the base and every expert.

Blocks arrive as numpy arrays of the storage type (bf16 as its raw uint16 patterns: numpy has no bf16;
`merge.io.map_array`), so the analysis never imports torch. For expert i, with delta_i = w_i - w_base
computed in float32 (float64 for F64 storage; every upcast is exact):

* changed mask m_i = |delta_i| > eta * max(|w_i|, |w_base|), over finite elements only. When the storage
  dtype makes the rule equal to "the stored value differs" (`config.bitwise_equivalent`), m_i is
  computed as delta_i != 0, which is the same mask;
* counts: |m_i|, |m_i ∧ m_j| (bit-packed masks, popcount), and per 65536-element group g of the tensor
  the sums Σ_g |m_i^g|·|m_j^g| that give the exact expectation of |m_i ∧ rot(m_j)| under a uniformly
  random non-zero rotation rot of every group (`expected_rotated`); optionally, for each permutation draw
  t, |m_i ∧ roll_t(m_j)|, where roll_t rotates every group by a seeded offset;
* shift sums: dot_ij = Σ d_i d_j and sq_ij = Σ d_i^2 m_j with d_i = delta_i ⊙ m_i (one BLAS dot product
  per entry and block, float64 across blocks; a BLAS dot keeps several SIMD partial sums, so each
  float32 partial sum covers a few thousand elements);
* optionally the SRHT partial projections of d_i ⊙ m_j and d_j ⊙ m_i for every pair (per seed).

Counts are integers, so they do not depend on blocks or threads; float sums depend on them only through
rounding (blocks are summed in a fixed order, so a run is reproducible).

Two implementations compute the deltas, masks, counts and shift sums: the native one (`_native.c`, built
by setup.py where a C compiler is available: one pass over the stored elements, float32 partial sums over
512 elements) and numpy's (about ten passes; the reference the tests hold the native one to). Both
follow the checked rule for non-finite elements. The permutation draws and the projections run in numpy
on the arrays either one returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import GROUP
from .srht import Srht, popcount
from .workspace import scratch

try:  # the C extension (setup.py); optional: without a compiler at install the numpy kernel runs
    from . import _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

NATIVE_DTYPES = {"BF16": 0, "F16": 1, "F32": 2}  # storage dtypes the native kernel reads (all in float32)
NATIVE_MAX_EXPERTS = 64


def native_built() -> bool:
    """Whether the native block kernel was built with this installation."""
    return _native is not None


@dataclass(frozen=True, slots=True)
class TensorJob:
    """What to compute for one tensor: the rule, the permutation offsets and the projections (if any)."""

    name: str
    numel: int
    eta: float
    bitwise: bool
    dtype: str  # the storage dtype code (BF16, F16, F32, F64)
    shifts: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]
    projection: Srht | None = None  # every seed's SRHT of this tensor
    native: bool = False  # run the native kernel (`native_built()`, a `NATIVE_DTYPES` dtype)

    @property
    def wide(self) -> bool:
        """float64 arithmetic (F64 storage), else float32."""
        return self.dtype == "F64"


@dataclass(slots=True)
class Sums:
    """Accumulated statistics of one tensor (numpy arrays; `add` in block order)."""

    n: int
    draws: int
    vectors: int
    seeds: int
    k: int
    changed: Any = None
    nonfinite: Any = None
    inter: Any = None
    dot: Any = None
    sq: Any = None
    perm: Any = None
    group_cc: Any = None  # Σ over the full groups of |m_i^g| |m_j^g|
    tail_cc: Any = None  # |m_i^g| |m_j^g| of the tensor's short last group (if any)
    tail_inter: Any = None  # |m_i^g ∧ m_j^g| of that group
    proj: Any = None
    blocks: int = field(default=0)

    def __post_init__(self) -> None:
        import numpy as np

        e = self.n
        self.changed = np.zeros(e, np.int64)
        self.nonfinite = np.zeros(e + 1, np.int64)
        self.inter = np.zeros((e, e), np.int64)
        self.dot = np.zeros((e, e), np.float64)
        self.sq = np.zeros((e, e), np.float64)
        self.perm = np.zeros((self.draws, e, e), np.int64)
        self.group_cc = np.zeros((e, e), np.int64)
        self.tail_cc = np.zeros((e, e), np.int64)
        self.tail_inter = np.zeros((e, e), np.int64)
        self.proj = np.zeros((self.seeds, self.vectors, self.k), np.float64) if self.seeds else None

    def add(self, other: Sums) -> Sums:
        for name in ("changed", "nonfinite", "inter", "dot", "sq", "perm", "group_cc", "tail_cc", "tail_inter"):
            getattr(self, name).__iadd__(getattr(other, name))
        if self.proj is not None:
            self.proj += other.proj
        self.blocks += 1
        return self


def _pack(mask: Any) -> Any:
    """(E, n) bool -> (E, ceil(n/64)) uint64, bit b of word w = element 64w + b."""
    import numpy as np

    e, n = mask.shape
    pad = -n % 64
    if pad:
        mask = np.concatenate([mask, np.zeros((e, pad), dtype=bool)], axis=1)
    return np.packbits(mask, axis=1, bitorder="little").view(np.uint64)


def _index(e: int, pairs: tuple[tuple[int, int], ...]) -> tuple[Any, Any]:
    """Row and column indices of the diagonal, then of `pairs`: the entries whose counts are kept."""
    import numpy as np

    idx = [(i, i) for i in range(e)] + list(pairs)
    return np.array([p[0] for p in idx]), np.array([p[1] for p in idx])


def _group_sums(e: int, i: Any, j: Any, groups: Any, tail: Any) -> tuple[Any, Any, Any, Any]:
    """From |m_i ∧ m_j| per whole group (P, G) and in the short group after them (P,), entries (i, j) with
    the diagonal's rows first: (E, E) int64 |m_i ∧ m_j|; Σ over the whole groups of |m_i^g| |m_j^g|; and,
    for the short group, |m_i^g| |m_j^g| and |m_i^g ∧ m_j^g| (0 outside the diagonal and the pairs)."""
    import numpy as np

    inter, group_cc, tail_cc, tail_inter = (np.zeros((e, e), np.int64) for _ in range(4))
    inter[i, j] = groups.sum(-1) + tail
    count = groups[:e]  # |m_i^g| per group: the diagonal rows come first
    group_cc[i, j] = (count[i] * count[j]).sum(-1)
    tail_cc[i, j] = tail[i] * tail[j]
    tail_inter[i, j] = tail
    return inter, group_cc, tail_cc, tail_inter


def _intersections(a: Any, pairs: tuple[tuple[int, int], ...], full: int) -> tuple[Any, Any, Any, Any]:
    """`_group_sums` of packed masks a (E, words) whose first `full` elements are whole 65536-element groups."""
    import numpy as np

    e = a.shape[0]
    i, j = _index(e, pairs)
    bits = popcount(a[i] & a[j])  # (P, words) uint8
    words = full // 64
    groups = bits[:, :words].reshape(len(i), -1, GROUP // 64).sum(-1, dtype=np.int64)  # (P, groups)
    tail = bits[:, words:].sum(-1, dtype=np.int64)
    return _group_sums(e, i, j, groups, tail)


def expected_rotated(sums: Sums, numel: int) -> Any:
    """E |m_i ∧ rot(m_j)| (E, E) float64 when every 65536-element group (and the short last one, of length
    L) is rotated by an offset drawn uniformly from its non-zero rotations, 1..L-1.

    Over all L rotations of one group the overlaps sum to |m_i^g| |m_j^g|, and rotation 0 gives
    |m_i^g ∧ m_j^g|, so the expectation over the non-zero ones is (|m_i^g| |m_j^g| - |m_i^g ∧ m_j^g|) / (L - 1)
    (a one-element group has only the identity). Exact, from integer counts.
    """
    tail = numel % GROUP
    full_inter = sums.inter - sums.tail_inter
    out = (sums.group_cc - full_inter) / (GROUP - 1)
    if tail > 1:
        out = out + (sums.tail_cc - sums.tail_inter) / (tail - 1)
    elif tail == 1:
        out = out + sums.tail_inter
    return out


def _roll(mask: Any, start: int, numel: int, shift: int) -> Any:
    """Rotate every GROUP-element group of the tensor (the last one may be shorter) by `shift` elements."""
    import numpy as np

    e, n = mask.shape
    full = min(n, (numel - start) // GROUP * GROUP)
    parts = []
    if full:
        parts.append(np.roll(mask[:, :full].reshape(e, -1, GROUP), shift, axis=2).reshape(e, full))
    if n > full:
        parts.append(np.roll(mask[:, full:], shift % (n - full), axis=1))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _permuted(mask: Any, packed: Any, start: int, numel: int, shifts: tuple[int, ...], pairs: Any) -> Any:
    """|m_i ∧ roll_t(m_j)| for every pair and draw t -> (T, E, E) int64.

    The full 65536-element groups are rotated in packed form (word gather + bit carry), all draws at
    once; a short last group of the tensor is rotated as booleans.
    """
    import numpy as np

    e, n = mask.shape
    out = np.zeros((len(shifts), e, e), np.int64)
    if not pairs or not shifts:
        return out
    i, j = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    full = min(n, (numel - start) // GROUP * GROUP)
    if full:
        w, per = full // 64, GROUP // 64
        q, r = np.divmod(np.asarray(shifts, dtype=np.int64), 64)
        lo_idx = (np.arange(per)[None, :] - q[:, None]) % per  # (T, per): word w comes from word w - q
        side, pos = np.unique(j, return_inverse=True)  # rotate each second-of-a-pair mask once
        words = packed[side, :w].reshape(len(side), -1, per)
        lo, hi = words[:, :, lo_idx], words[:, :, (lo_idx - 1) % per]  # (experts, groups, T, per)
        r = r.astype(np.uint64)[None, None, :, None]
        rolled = (lo << r) | np.where(r > 0, hi >> (np.uint64(64) - r), np.uint64(0))
        fixed = packed[i, :w].reshape(len(i), -1, 1, per)
        out[:, i, j] += popcount(fixed & rolled[pos]).sum(axis=(1, 3), dtype=np.int64).T
    if n > full:
        tail = mask[:, full:]
        packed_tail = _pack(tail)
        for t, shift in enumerate(shifts):
            rolled_tail = _pack(np.roll(tail, shift % (n - full), axis=1))
            out[t, i, j] += popcount(packed_tail[i] & rolled_tail[j]).sum(-1, dtype=np.int64)
    return out


def _upcast(x: Any, dtype: str, out: Any) -> None:
    """Storage elements `x` into the float array `out`, exactly (bf16: its bits are the top half of a float32)."""
    import numpy as np

    if dtype == "BF16":
        np.left_shift(x, 16, out=out.view(np.uint32), dtype=np.uint32)
    else:
        out[...] = x


def _shift_sums(d: Any, mask: Any) -> tuple[Any, Any]:
    """(dot, sq), (E, E) float64: dot_ij = Σ d_i d_j and sq_ij = Σ d_i^2 m_j, one BLAS dot product each.

    For E = 5 rows a dot per entry runs at the memory's speed, where a (5 x n)(n x 5) GEMM spends most of
    its time packing its operands. sq_ii = dot_ii (d_i is zero off m_i).
    """
    import numpy as np

    e, n = d.shape
    dot, sq = np.zeros((e, e), np.float64), np.zeros((e, e), np.float64)
    for i in range(e):
        for j in range(i, e):
            dot[i, j] = dot[j, i] = np.dot(d[i], d[j])
    if e > 1:
        square = np.multiply(d, d, out=scratch("square", e, n, d.dtype))
        m = scratch("mask", e, n, d.dtype)
        m[...] = mask
        for i in range(e):
            for j in range(e):
                if i != j:
                    sq[i, j] = np.dot(square[i], m[j])
    sq[np.diag_indices(e)] = dot.diagonal()
    return dot, sq


def _deltas(job: TensorJob, base: Any, experts: list[Any], checked: bool = False) -> tuple[Any, Any, Any]:
    """(delta (E, n) float, changed mask (E, n) bool, nonfinite counts (E+1,)) for one block.

    Unchecked (the fast path), NaN/Inf propagate into the deltas and `block_sums` notices them in
    sum(delta^2); `checked` counts them per model and neutralises them (delta 0: never changed, never summed).
    """
    import numpy as np

    ftype = np.float64 if job.wide else np.float32
    n = base.shape[0]
    b = scratch("base", 1, n, ftype)[0]
    _upcast(base, job.dtype, b)
    x = scratch("delta", len(experts), n, ftype)
    for i, e in enumerate(experts):
        _upcast(e, job.dtype, x[i])
    nonfinite = np.zeros(len(experts) + 1, np.int64)
    if checked:
        ok_b, ok = np.isfinite(b), np.isfinite(x)
        nonfinite[0] = n - np.count_nonzero(ok_b)
        nonfinite[1:] = n - np.count_nonzero(ok, axis=1)
        b = np.where(ok_b, b, ftype(0))
        x = np.where(ok & ok_b, x, b)
    if job.bitwise:
        d = np.subtract(x, b, out=x)
        return d, d != 0, nonfinite
    limit = np.maximum(np.abs(x), np.abs(b), out=scratch("limit", *x.shape, ftype))
    limit *= job.eta
    d = np.subtract(x, b, out=x)
    mask = np.abs(d, out=scratch("abs", *x.shape, ftype)) > limit
    d *= mask
    return d, mask, nonfinite


def _native_stats(job: TensorJob, base: Any, experts: list[Any], full: int, arrays: bool) -> tuple[Any, ...]:
    """The native kernel on one block: (d, mask, nonfinite, dot, sq, group sums); d and mask (E, n) only
    when `arrays` (for the permutation draws and the projections), else None."""
    import numpy as np

    e, n = len(experts), len(base)
    dot, sq = np.empty((e, e), np.float64), np.empty((e, e), np.float64)
    counts = np.empty((-(-n // GROUP), e, e), np.int64)
    nonfinite = np.empty(e + 1, np.int64)
    d = scratch("delta", e, n, np.float32) if arrays else None
    mask = scratch("mask", e, n, np.bool_) if arrays else None
    _native.block_stats(
        base, tuple(experts), NATIVE_DTYPES[job.dtype], job.bitwise, job.eta, GROUP, dot, sq, counts, nonfinite,
        d, mask,
    )  # fmt: skip
    i, j = _index(e, job.pairs)
    whole = full // GROUP
    sums = _group_sums(e, i, j, counts[:whole, i, j].T, counts[whole:, i, j].sum(0))
    return d, mask, nonfinite, dot, sq, sums


def _numpy_stats(job: TensorJob, base: Any, experts: list[Any], full: int) -> tuple[Any, ...]:
    """`_native_stats` in numpy (d and mask always), plus the bit-packed masks."""
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are expected here, and handled next
        d, mask, nonfinite = _deltas(job, base, experts)
        dot, sq = _shift_sums(d, mask)
    if not np.isfinite(dot.diagonal()).all():  # a NaN/Inf somewhere in this block: count and exclude it
        d, mask, nonfinite = _deltas(job, base, experts, checked=True)
        dot, sq = _shift_sums(d, mask)
    packed = _pack(mask)
    return d, mask, nonfinite, dot, sq, _intersections(packed, job.pairs, full), packed


def block_sums(job: TensorJob, start: int, base: Any, experts: list[Any]) -> Sums:
    """The statistics of elements [start, start + len(base)) of one tensor (a `Sums` for one block).

    `base` and every expert are 1-D numpy arrays of the storage type (`merge.io.NUMPY_STORAGE`).
    """
    import numpy as np

    proj = job.projection if job.pairs else None
    full = min(len(base), (job.numel - start) // GROUP * GROUP)
    if job.native:
        d, mask, nonfinite, dot, sq, counts = _native_stats(
            job, base, experts, full, arrays=bool(job.shifts) or proj is not None
        )
        packed = _pack(mask) if job.shifts else None
    else:
        d, mask, nonfinite, dot, sq, counts, packed = _numpy_stats(job, base, experts, full)
    out = Sums(len(experts), len(job.shifts), 2 * len(job.pairs), proj.seeds if proj else 0, proj.k if proj else 0)
    out.nonfinite += nonfinite
    inter, group_cc, tail_cc, tail_inter = counts
    out.inter += inter
    out.group_cc += group_cc
    out.tail_cc += tail_cc
    out.tail_inter += tail_inter
    out.changed += out.inter.diagonal()
    if job.shifts:
        out.perm += _permuted(mask, packed, start, job.numel, job.shifts, job.pairs)
    out.dot += dot
    out.sq += sq
    if proj is not None:  # d_i on the overlap with j, then d_j on the overlap with i, signed by D
        order = [*job.pairs, *(p[::-1] for p in job.pairs)]
        first, second = np.array([p[0] for p in order]), np.array([p[1] for p in order])
        signs = proj.signs(start, start + d.shape[1])

        def fill(s0: int, s1: int, piece: Any) -> None:
            np.multiply(d[first, s0:s1], mask[second, s0:s1], out=piece)
            piece *= signs[s0:s1]

        out.proj += proj.project_pieces(fill, len(order), d.shape[1], start)
    return out
