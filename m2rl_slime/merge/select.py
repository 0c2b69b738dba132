"""Exact streaming selection and deterministic reductions.

`RadixSelect` finds the exact k-th largest of non-negative fp32 values that arrive in blocks (a chunked
tensor, or a whole model), without sorting and without holding the values: the IEEE-754 bit pattern of
a non-negative float, read as an int32, orders exactly like the float. Pass 1 histograms the high 16
bits and picks the bucket that holds the k-th largest; pass 2 histograms the low 16 bits of the values
in that bucket. Both passes are integer counts, so the result does not depend on block order, chunk
size, thread count or device, and it equals ``torch.kthvalue`` on the concatenated values.

`group_sums` / `tree_sum` give float64 sums whose rounding is fixed by the element index alone:
values are summed pairwise inside fixed 65536-element groups and the group sums pairwise again. Every
step is an elementwise add, so the result is bit-identical across chunkings, threads and devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

GROUP = 1 << 16  # elements per fixed reduction group; chunk and block sizes are multiples of it
_HI_BINS = 1 << 15  # sign bit is clear for |x|, so the high half-word is < 2**15
_LO_BINS = 1 << 16


def _bits(values: Any) -> Any:
    import torch

    return values.contiguous().view(torch.int32).reshape(-1)


def hi_histogram(values: Any) -> Any:
    """Counts of the high 16 bits of non-negative fp32 `values` (int64, 32768 bins, on the values' device)."""
    import torch

    return torch.bincount(_bits(values) >> 16, minlength=_HI_BINS)


def lo_histogram(values: Any, bucket: int) -> Any:
    """Counts of the low 16 bits of the `values` whose high 16 bits equal `bucket` (int64, 65536 bins)."""
    import torch

    # bits - bucket*2**16 is in [0, 65536) exactly for the values in the bucket; others go to two spill bins
    rel = (_bits(values) - (bucket << 16)).clamp_(-1, _LO_BINS).add_(1)
    return torch.bincount(rel, minlength=_LO_BINS + 2)[1 : _LO_BINS + 1]


def _locate(hist: Any, k: int) -> tuple[int, int]:
    """The bin holding the k-th largest (1-based) and the rank of that element inside the bin."""
    import torch

    counts = torch.flip(hist.cpu(), [0]).cumsum(0)  # counts[j] = number of values in bins >= len-1-j
    j = int(torch.searchsorted(counts, torch.tensor([k], dtype=counts.dtype)).item())
    above = int(counts[j - 1]) if j > 0 else 0
    return len(hist) - 1 - j, k - above


class RadixSelect:
    """Exact k-th largest of several streams of non-negative fp32 values at once (one per expert).

    Usage: feed every block to `pass1` and sum the histograms, call `locate(hist, ks)`; if
    `needs_pass2`, feed every block again to `pass2` and sum, then `finish(hist2)` returns the thresholds.

    Args:
        n: Number of streams.
    """

    def __init__(self, n: int):
        self.n = n
        self._buckets: list[int] = []
        self._ranks: list[int] = []

    @staticmethod
    def pass1(values: Sequence[Any]) -> Any:
        """Stacked high-half histograms of one block, shape [n, 32768]."""
        import torch

        return torch.stack([hi_histogram(v) for v in values]).cpu()

    def locate(self, hist: Any, ks: Sequence[int]) -> None:
        """Choose the buckets from the summed pass-1 histograms; `ks` are 1-based ranks from the top."""
        total = int(hist[0].sum())
        self._buckets, self._ranks = [], []
        for i, k in enumerate(ks):
            if not 1 <= k <= total:
                raise ValueError(f"rank {k} outside [1, {total}]")
            b, r = _locate(hist[i], k)
            self._buckets.append(b)
            self._ranks.append(r)

    def pass2(self, values: Sequence[Any]) -> Any:
        """Stacked low-half histograms of one block inside the chosen buckets, shape [n, 65536]."""
        import torch

        return torch.stack([lo_histogram(v, b) for v, b in zip(values, self._buckets, strict=True)]).cpu()

    def finish(self, hist: Any) -> list[float]:
        """The exact thresholds (k-th largest values) from the summed pass-2 histograms."""
        import torch

        out = []
        for i in range(self.n):
            lo, _ = _locate(hist[i], self._ranks[i])
            bits = torch.tensor([(self._buckets[i] << 16) | lo], dtype=torch.int32)
            out.append(float(bits.view(torch.float32).item()))
        return out


def group_sums(values: Any) -> Any:
    """Pairwise float64 sums of consecutive 65536-element groups (the tail group zero-padded).

    Args:
        values: 1-D tensor whose first element sits on a group boundary of the full tensor.

    Returns:
        1-D float64 tensor with one sum per group.
    """
    import torch

    x = values.reshape(-1).to(torch.float64)
    pad = -x.numel() % GROUP
    if pad:
        x = torch.cat([x, x.new_zeros(pad)])
    x = x.view(-1, GROUP)
    width = GROUP
    while width > 1:
        width //= 2
        x = x[:, :width] + x[:, width:]
    return x.reshape(-1)


def tree_sum(values: Any) -> float:
    """Pairwise float64 sum of a 1-D tensor, zero-padded to a power of two (fixed rounding order)."""
    import torch

    x = values.reshape(-1).to(torch.float64)
    if x.numel() == 0:
        return 0.0
    size = 1 << (x.numel() - 1).bit_length()
    if size != x.numel():
        x = torch.cat([x, x.new_zeros(size - x.numel())])
    while x.numel() > 1:
        half = x.numel() // 2
        x = x[:half] + x[half:]
    return float(x.item())
