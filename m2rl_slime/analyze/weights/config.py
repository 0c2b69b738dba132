"""Options of the weight-shift analysis (`WeightsOptions`), the layer selection syntax and the statement of
what the changed-weight rule means for a storage dtype.

The command-line flags of ``analyze weights`` are generated from the fields of `WeightsOptions` (name,
type, default and the ``help`` in each field's metadata), so the two cannot drift apart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ConfigError

Project = Literal["table", "all", "none"]
Fingerprint = Literal["stat", "content"]
Kernel = Literal["auto", "native", "numpy"]
GROUP = 1 << 16  # elements per permutation group and per sign-vector draw (fixed: results never depend on it)
# significand precision (bits, implicit bit included) of each floating storage dtype
PRECISION = {"BF16": 8, "F16": 11, "F32": 24, "F64": 53}
_SPEC = re.compile(r"^\d+(-\d+)?$")


def _opt(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True, slots=True)
class WeightsOptions:
    """How to run ``analyze weights``; every field is also a command-line flag (``--proj-dim`` etc.)."""

    eta: float = _opt(1e-3, "changed-weight rule: |w_rl - w_sft| > eta * max(|w_rl|, |w_sft|)")
    layers: str = _opt("all", "layers to analyse (0-based HF index): all, 17, 0-3,17", metavar="SPEC")
    table_layer: int | None = _opt(
        None, "layer of Table 5 and Fig. 3 (default 17 when analysed, else all analysed layers pooled)"
    )
    other: bool | None = _opt(None, "also analyse embeddings/final norm/LM head (default: only with --layers all)")
    project: Project = _opt("table", "tensors that get the projected (SRHT) cosine: the table layer, all, none")
    proj_dim: int = _opt(256, "rows of the SRHT projection (the paper: 256)")
    seeds: int = _opt(8, "projection seeds averaged (mean and s.d. reported)")
    perm_draws: int = _opt(
        0, "random draws of the permutation reference, next to its exact expectation (a check; 0: none)"
    )
    seed: int = _opt(0, "seed of the projections and permutations")
    threads: int = _opt(0, "compute threads (0: one per core)")
    kernel: Kernel = _opt("auto", "block kernel: native (C, one pass), numpy, or auto (native where it was built)")
    chunk_elems: int = _opt(1 << 24, "elements per read chunk (power of two >= 65536)")
    block_elems: int = _opt(
        0, "elements per compute block (power of two >= 65536, <= chunk; 0: 2^20 native, 2^18 numpy kernel)"
    )
    read_ahead: int = _opt(2, "read-ahead budget, in chunks (memory-mapped, counted in RSS)")
    advise_ahead: int = _opt(
        8, "how many chunks ahead the kernel is asked to read into the page cache (not mapped, not in RSS)"
    )
    fingerprint: Fingerprint = _opt("stat", "input fingerprints for --resume: headers+sizes+mtimes or sha256")
    resume: bool = _opt(False, "continue an interrupted analysis in --out")
    overwrite: bool = _opt(False, "replace a finished weights analysis in --out")
    progress: bool = _opt(True, "show a progress bar")

    def validate(self) -> None:
        if not (0.0 <= self.eta < 1.0) or math.isnan(self.eta):
            raise ConfigError(f"--eta must be in [0, 1), got {self.eta}")
        for key in ("chunk_elems", "block_elems"):
            value = getattr(self, key)
            if (value < GROUP or value & (value - 1)) and not (key == "block_elems" and value == 0):
                raise ConfigError(f"--{key.replace('_', '-')} must be a power of two >= {GROUP}, got {value}")
        if self.block_elems > self.chunk_elems:
            raise ConfigError(f"--block-elems ({self.block_elems}) must not exceed --chunk-elems ({self.chunk_elems})")
        if self.proj_dim < 1 or self.seeds < 1:
            raise ConfigError("--proj-dim and --seeds must be >= 1")
        if self.perm_draws < 0 or self.threads < 0 or self.read_ahead < 1 or self.advise_ahead < 0:
            raise ConfigError("--perm-draws, --threads and --advise-ahead must be >= 0, --read-ahead >= 1")
        parse_layers(self.layers, None)
        self.native()

    def block(self) -> int:
        """Elements per compute block: `block_elems`, or by kernel (the native one keeps its working set in
        512-element pieces, so larger blocks only cut the per-block Python; numpy's passes want the L2)."""
        return self.block_elems or min(self.chunk_elems, 1 << 20 if self.native() else 1 << 18)

    def native(self) -> bool:
        """Whether the blocks run the native kernel (`--kernel`; auto: where it was built).

        Raises:
            ConfigError: ``--kernel native`` where the extension was not built.
        """
        from .kernel import native_built

        if self.kernel == "native" and not native_built():
            raise ConfigError(
                "--kernel native: the C extension m2rl_slime.analyze.weights._native was not built "
                "(no C compiler at install?); reinstall with gcc available, or use --kernel numpy"
            )
        return self.kernel != "numpy" and native_built()

    def compute_threads(self) -> int:
        import os

        # the read-ahead and driver threads are light (page mapping, slicing, queueing): one compute thread
        # per core
        return self.threads or max(
            1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        )


def parse_layers(spec: str, n_layers: int | None) -> tuple[int, ...] | None:
    """Parse ``all`` / ``17`` / ``0-3,17`` into sorted layer indices (None for all).

    Raises:
        ConfigError: bad syntax, or a layer the model does not have (when `n_layers` is known).
    """
    text = spec.strip().lower()
    if text == "all":
        return None
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not _SPEC.match(part):
            raise ConfigError(f"--layers {spec!r}: expected all, N, N-M or a comma list of those (0-based)")
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if b < a:
            raise ConfigError(f"--layers {spec!r}: empty range {part}")
        out.update(range(a, b + 1))
    if n_layers is not None:
        bad = sorted(n for n in out if n >= n_layers)
        if bad:
            raise ConfigError(f"--layers {spec!r}: layer {bad[0]} is not in the model (layers 0-{n_layers - 1})")
    return tuple(sorted(out))


def bitwise_equivalent(dtype: str, eta: float) -> bool:
    """Whether, for values stored as `dtype`, the rule marks exactly the weights whose stored value differs.

    Two distinct values of a format with p significand bits differ by at least 2^-p of the larger
    magnitude, so ``eta < 2^-p`` makes the rule equal to inequality (signed zeros excepted). The small
    margin keeps the fp32 evaluation of ``eta * max`` on the safe side.
    """
    return eta < 2.0 ** -PRECISION[dtype] * (1 - 2.0**-20)


def dtype_statement(dtype: str, eta: float) -> dict[str, Any]:
    """The storage dtype, its smallest relative gap, and what eta means for it (recorded in the output)."""
    p = PRECISION[dtype]
    gap = 2.0**-p
    if bitwise_equivalent(dtype, eta):
        text = (
            f"{dtype} storage: eta = {eta:g} is below 2^-{p} = {gap:.3g}, the smallest relative gap between two "
            f"distinct {dtype} values, so the rule marks exactly the weights whose stored value changed "
            "(bitwise inequality; +0 vs -0 excepted)"
        )
    else:
        text = (
            f"{dtype} storage: eta = {eta:g} is not below 2^-{p} = {gap:.3g}, so the rule ignores changes "
            f"smaller than eta relative to the weight; it is not the same as bitwise inequality"
        )
    return {
        "storage_dtype": dtype,
        "significand_bits": p,
        "min_relative_gap": gap,
        "eta": eta,
        "bitwise_equivalent": bitwise_equivalent(dtype, eta),
        "statement": text,
    }
