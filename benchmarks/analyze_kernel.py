"""Where the time of `analyze weights` goes per block: its kernel's parts, and the SRHT's transform layouts.

Synthetic bf16 blocks (a base and `--experts` experts, each element changed with probability 1/3), many
distinct blocks so that every block's inputs come from memory, not the CPU cache (as in a real run). One
thread, OpenBLAS pinned to one thread (as the analysis runs), CPU seconds per block, medians over
`--repeat` passes:

* `block_sums` with the native kernel (the C extension, where it was built), against the numpy kernel
  whole, and the numpy kernel's parts: the exact upcast and subtraction with the mask (`_deltas`), the
  shift sums (`_shift_sums`: one BLAS dot per entry), the packing and per-group counts;
* anchor for the shift sums: the same two (E x n)(n x E) products as numpy matmuls (a GEMM per product);
* the SRHT of one block for every ordered pair (2 x pairs vectors, `--seeds` x 256 rows): the transform in
  cache-sized pieces as the analysis does it (`Srht.project`), against one transform of the whole block,
  and the Hadamard stage plans of `srht.radices` against 16- and 32-point stages (the previous plan);
  last, the same projection with OpenBLAS's own threads (as without `BlasThreads`).

    python benchmarks/analyze_kernel.py [--block 262144] [--experts 5] [--repeat 5]

Prints one JSON line per measurement, then a table.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from m2rl_slime.analyze.weights import srht  # noqa: E402
from m2rl_slime.analyze.weights.kernel import (  # noqa: E402
    TensorJob,
    _deltas,
    _intersections,
    _pack,
    _shift_sums,
    block_sums,
    native_built,
)
from m2rl_slime.merge.runtime import BlasThreads, reuse_freed_memory  # noqa: E402


def _inputs(n: int, blocks: int, experts: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    base = (rng.standard_normal(n * blocks).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    out = []
    for _ in range(experts):
        e = base.copy()
        e[rng.random(base.size) < 1 / 3] += 1  # the next bf16 value: a change the rule always sees
        out.append(e)
    return base, out


def _per_block(fn, blocks: int, repeat: int) -> float:
    """Median over `repeat` passes of the CPU ms per call of fn(k) for k over the blocks."""
    passes = []
    for _ in range(repeat):
        started = time.process_time()
        for k in range(blocks):
            fn(k)
        passes.append((time.process_time() - started) / blocks * 1e3)
    return statistics.median(passes)


def _fwht_with(x: np.ndarray, plan: list[int]) -> np.ndarray:
    """The transform of `srht.fwht` with a given stage plan (the anchor plans)."""
    v, n = x.shape
    outer, inner = v, n
    for a in plan[:-1]:
        inner //= a
        x = np.matmul(srht.hadamard(a), x.reshape(outer, a, inner))
        outer *= a
    return np.matmul(x.reshape(-1, plan[-1]), srht.hadamard(plan[-1])).reshape(v, n)


def _previous_plan(bits: int) -> list[int]:
    """16- and 32-point stages: ceil(bits / 5) stages as even as possible (the plan before `srht.radices`)."""
    stages = max(1, -(-bits // 5))
    return [1 << (bits // stages + (s >= stages - bits % stages)) for s in range(stages)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=1 << 18, help="elements per block (a power of two >= 65536)")
    p.add_argument("--experts", type=int, default=5)
    p.add_argument("--blocks", type=int, default=24, help="distinct blocks (inputs: 2 bytes x experts+1 each)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seeds", type=int, default=8)
    args = p.parse_args(argv)
    n, nb, e = args.block, args.blocks, args.experts
    reuse_freed_memory()
    base, experts = _inputs(n, nb, e)
    pairs = tuple((i, j) for i in range(e) for j in range(i + 1, e))
    job = TensorJob("model.layers.17.mlp.up_proj.weight", n * nb, 1e-3, True, "BF16", (), pairs)

    def views(k: int) -> tuple[np.ndarray, list[np.ndarray]]:
        return base[k * n : (k + 1) * n], [x[k * n : (k + 1) * n] for x in experts]

    rows: list[tuple[str, float, str]] = []

    def emit(name: str, ms: float, note: str = "") -> None:
        rows.append((name, ms, note))
        print(json.dumps({"bench": "analyze_kernel", "part": name, "ms_per_block": round(ms, 3), "block": n,
                          "experts": e, "note": note}), flush=True)  # fmt: skip

    with BlasThreads():
        if native_built():
            fast = TensorJob(job.name, job.numel, job.eta, True, "BF16", (), pairs, native=True)
            emit(
                "block_sums, native kernel (no projection)",
                _per_block(lambda k: block_sums(fast, k * n, *views(k)), nb, args.repeat),
                "the C extension: one pass",
            )
        else:
            print(json.dumps({"bench": "analyze_kernel", "skipped": "native kernel not built"}), flush=True)
        emit(
            "block_sums, numpy kernel (no projection)",
            _per_block(lambda k: block_sums(job, k * n, *views(k)), nb, args.repeat),
        )
        emit("  _deltas: upcast, subtract, mask", _per_block(lambda k: _deltas(job, *views(k)), nb, args.repeat))
        d, mask, _ = _deltas(job, *views(0))
        d, mask = d.copy(), mask.copy()
        emit("  _shift_sums: 35 BLAS dots", _per_block(lambda k: _shift_sums(d, mask), nb, args.repeat))
        m = mask.astype(d.dtype)
        emit(
            "  anchor: the same as two matmuls",
            _per_block(lambda k: (d @ d.T, (d * d) @ m.T), nb, args.repeat),
            "numpy GEMM (OpenBLAS)",
        )
        emit(
            "  packing and per-group counts",
            _per_block(lambda k: _intersections(_pack(mask), pairs, n), nb, args.repeat),
        )
        proj = srht.Srht.build(job.name, n * nb, 0, 256, args.seeds)
        projected = TensorJob(job.name, job.numel, job.eta, True, "BF16", (), pairs, proj)
        emit(
            "block_sums (with the SRHT)",
            _per_block(lambda k: block_sums(projected, k * n, *views(k)), nb, max(1, args.repeat // 2)),
        )
        vectors = np.random.default_rng(1).standard_normal((2 * len(pairs), n)).astype(np.float32)
        emit("  SRHT in 2^14 pieces (Srht.project)", _per_block(lambda k: proj.project(vectors, 0), 4, args.repeat))
        bits = int(math.log2(n))
        emit(
            "  anchor: one transform of the whole block",
            _per_block(lambda k: _fwht_with(vectors, _previous_plan(bits)), 4, args.repeat),
            f"stages {_previous_plan(bits)}",
        )
        piece = np.ascontiguousarray(vectors[:, : 1 << srht.SUB_BITS])
        plan = srht.radices(srht.SUB_BITS)
        emit(f"  one 2^14 piece, stages {plan}", _per_block(lambda k: srht.fwht(piece), 64, args.repeat))
        old = _previous_plan(srht.SUB_BITS)
        emit(f"  anchor: one piece, stages {old}", _per_block(lambda k: _fwht_with(piece, old), 64, args.repeat))
    emit(
        "  anchor: SRHT with OpenBLAS's own threads",
        _per_block(lambda k: proj.project(vectors, 0), 4, args.repeat),
        "CPU of every thread: BlasThreads not applied",
    )
    print(f"\n== analyze weights kernel: blocks of {n} elements, {e} experts, bf16, CPU ms per block (one core) ==")
    for name, ms, note in rows:
        print(f"{name:44s} {ms:8.3f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
