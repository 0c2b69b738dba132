"""`run_merge`: the streaming driver.

Tensors are processed in the base's shard/offset order. Each tensor is read in chunks of at most
``chunk_elems`` elements (memory-mapped, read ahead by a background thread); each chunk is cut into
``block_elems`` compute blocks that run in a thread pool (CPU) or one block per chunk on CUDA. Methods that
need a whole-tensor statistic get extra passes: a single-chunk tensor is kept mapped between passes, a
chunked one (the embeddings) is re-read. Output chunks go to a writer thread that streams them into the
current shard. Every read, pass and block boundary is fixed by the plan, so the bytes written never
depend on threads, chunk sizes or timing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import M2RLError
from .config import MergeConfig, MergeOptions
from .io import DTYPES, OUT_CODES, FileCache, ReadAhead, advise_range, map_range, torch_dtype
from .manifest import MANIFEST, copy_side_files, side_source, write_manifest
from .methods import Block
from .plan import MergePlan, PlannedShard, PlannedTensor, build_plan
from .runtime import TorchThreads, check_device, progress_bar, reuse_freed_memory
from .stats import DeltaCounts, block_counts, summarize
from .validate import validate_output, validation_error
from .workdir import Progress, io_error, publish
from .writer import ShardStream

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class MergeReport:
    """What `run_merge` did: the manifest it wrote, wall time, bytes written and warnings."""

    out: Path
    manifest: dict[str, Any]
    seconds: float
    bytes_written: int
    warnings: tuple[str, ...]


class _Engine:
    """Chunk/block bookkeeping and the compute pool for one plan."""

    def __init__(self, plan: MergePlan, pbar: Any):
        import torch

        self.plan = plan
        self.opts = plan.options
        self.files = FileCache()
        self.threads = self.opts.compute_threads()
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="merge-compute")
        self.device = torch.device(self.opts.device)
        self.names = tuple(e.name for e in plan.config.experts)
        self.weights = tuple(e.weight for e in plan.config.experts)
        self.out_dtype = torch_dtype(OUT_CODES[plan.config.dtype])
        self.pbar = pbar

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.files.close()

    def chunks(self, t: PlannedTensor) -> list[tuple[int, int]]:
        step = self.opts.chunk_elems
        return [(s, min(s + step, t.numel)) for s in range(0, t.numel, step)] or [(0, 0)]

    def read_job(
        self, t: PlannedTensor, start: int, stop: int, base_only: bool = False
    ) -> tuple[int, Callable[[], Any]]:
        """(bytes, read function) for elements [start, stop) of the base and, unless base_only, every expert."""
        infos = [self.plan.base.tensors[t.name]]
        if not base_only:
            infos += [e.tensors[t.name] for e in self.plan.experts]
        nbytes = sum(i.itemsize for i in infos) * (stop - start)

        def read() -> list[Any]:
            for info in infos:  # let the kernel fetch all ranges at once, in large requests
                advise_range(self.files, info, start, stop)
            return [map_range(self.files, info, start, stop) for info in infos]

        return nbytes, read

    def read_budget(self) -> int:
        """Bytes the read-ahead may hold beyond the chunk being computed: `read_ahead` full chunks."""
        item = max((DTYPES[t.in_dtype][1] for t in self.plan.tensors), default=2)
        return self.opts.read_ahead * self.opts.chunk_elems * item * (1 + len(self.plan.experts))

    def blocks(self, t: PlannedTensor, data: list[Any], c0: int, c1: int) -> list[Block]:
        step = c1 - c0 if self.opts.device == "cuda" else self.opts.block_elems
        out = []
        for s in range(c0, max(c1, c0 + 1), step):
            e = min(s + step, c1)
            views = [x[s - c0 : e - c0] for x in data]
            out.append(
                Block(t.name, s, e, views[0], tuple(views[1:]), self.names, self.weights, self.plan.config.seed)
            )
        return out

    def on_device(self, blk: Block) -> Block:
        if self.opts.device == "cpu":
            return blk
        return dataclasses.replace(
            blk, base=blk.base.to(self.device), experts=tuple(x.to(self.device) for x in blk.experts)
        )

    def ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Run fn over items in the pool, yielding results in item order, a bounded number in flight."""
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(self.pool.submit(fn, item))
            if len(pending) >= 2 * self.threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _TensorPasses:
    """`Passes` over one tensor, consuming its chunk reads from the read-ahead in schedule order."""

    def __init__(self, eng: _Engine, t: PlannedTensor, reads: ReadAhead, declared: int):
        self.numel = t.numel
        self._eng, self._t, self._reads = eng, t, reads
        self._chunks = eng.chunks(t)
        self._cached: Any = None
        self._left = declared

    def chunk_data(self) -> Iterator[tuple[int, int, Any]]:
        if len(self._chunks) == 1:
            if self._cached is None:
                self._cached = self._reads.next()
            yield *self._chunks[0], self._cached
            return
        for c0, c1 in self._chunks:
            yield c0, c1, self._reads.next()

    def fold(self, fn: Callable[[Block], R], combine: Callable[[Any, R], Any], init: Any) -> Any:
        self._take_pass()
        acc = init
        eng = self._eng
        for c0, c1, data in self.chunk_data():
            for r in eng.ordered(lambda b: fn(eng.on_device(b)), eng.blocks(self._t, data, c0, c1)):
                acc = combine(acc, r)
        return acc

    def _take_pass(self) -> None:
        self._left -= 1
        if self._left < 0:
            raise M2RLError(f"internal error: {self._eng.plan.method.name} made more passes than it declares")

    def skip_unused(self) -> None:
        """Consume the reads of declared passes the method did not need (keeps the schedule aligned)."""
        while self._left > 0:
            self._take_pass()
            if len(self._chunks) > 1:
                for _ in self._chunks:
                    self._reads.next()


class _ModelPasses:
    """`Passes` over every merged tensor of the model (whole-model statistics)."""

    def __init__(self, eng: _Engine, passes: int):
        self.numel = eng.plan.merged_numel
        self._eng = eng
        merged = [t for t in eng.plan.tensors if t.merge]
        jobs = [eng.read_job(t, c0, c1) for _ in range(passes) for t in merged for c0, c1 in eng.chunks(t)]
        self._reads = ReadAhead(jobs, eng.read_budget())
        self._merged = merged

    def fold(self, fn: Callable[[Block], R], combine: Callable[[Any, R], Any], init: Any) -> Any:
        acc = init
        eng = self._eng
        for t in self._merged:
            for c0, c1 in eng.chunks(t):
                data = self._reads.next()
                for r in eng.ordered(lambda b: fn(eng.on_device(b)), eng.blocks(t, data, c0, c1)):
                    acc = combine(acc, r)
                eng.pbar.update(sum(DTYPES[t.in_dtype][1] * (c1 - c0) for _ in data))
        return acc

    def close(self) -> None:
        self._reads.close()


def _schedule(eng: _Engine, shards: Iterable[PlannedShard]) -> Iterator[tuple[int, Callable[[], Any]]]:
    """Every chunk read of the write phase, in the order `_write_tensor` consumes them."""
    passes = eng.plan.method.tensor_passes(eng.plan.params)
    for shard in shards:
        for t in shard.tensors:
            chunks = eng.chunks(t)
            reps = 1 if not t.merge or len(chunks) == 1 else passes + 1
            for _ in range(reps):
                for c0, c1 in chunks:
                    yield eng.read_job(t, c0, c1, base_only=not t.merge)


def _apply_block(eng: _Engine, blk: Block, *, stats: Any, out: Any, c0: int) -> DeltaCounts:
    dev = eng.on_device(blk)
    merged = eng.plan.method.apply(dev, eng.plan.params, stats)
    dst = out[blk.start - c0 : blk.stop - c0]
    if merged.device == dst.device:
        dst.copy_(merged)  # rounds to the output dtype (round-to-nearest-even, as .to() does)
        low = dst
    else:
        low = merged.to(eng.out_dtype)
        dst.copy_(low)
    return block_counts(dev.base, dev.experts, merged, low)


def _write_tensor(
    eng: _Engine, t: PlannedTensor, reads: ReadAhead, writer: ShardStream, counts: DeltaCounts, model_stats: Any
) -> None:
    import torch

    if not t.merge:
        for c0, c1 in eng.chunks(t):
            (base,) = reads.next()
            writer.write(base)
            eng.pbar.update((c1 - c0) * DTYPES[t.out_dtype][1])
        return
    method, params = eng.plan.method, eng.plan.params
    passes = _TensorPasses(eng, t, reads, method.tensor_passes(params))
    stats = method.tensor_stats(passes, params, model_stats) if method.tensor_stats else None
    passes.skip_unused()
    for c0, c1, data in passes.chunk_data():
        out = torch.empty(c1 - c0, dtype=eng.out_dtype)
        blocks = eng.blocks(t, data, c0, c1)
        for cnt in eng.ordered(functools.partial(_apply_block, eng, stats=stats, out=out, c0=c0), blocks):
            counts.add(cnt)
        writer.write(out)
        eng.pbar.update(out.numel() * out.element_size())


def _model_stats(eng: _Engine, progress: Progress) -> Any:
    plan = eng.plan
    n = plan.method.model_passes(plan.params)
    if n == 0 or plan.method.model_stats is None:
        return None
    if progress.model_stats is not None:
        log.info("resume: reusing the whole-model statistics of the interrupted run")
        return progress.model_stats
    passes = _ModelPasses(eng, n)
    try:
        stats = plan.method.model_stats(passes, plan.params)
    finally:
        passes.close()
    progress.model_stats = stats
    progress.save()
    return stats


def _merge_shards(eng: _Engine, progress: Progress, writer: ShardStream, model_stats: Any) -> None:
    shards = eng.plan.shards[len(progress.done) :]
    reads = ReadAhead(_schedule(eng, shards), eng.read_budget())
    try:
        for shard in shards:
            writer.open(shard)
            counts = DeltaCounts(len(eng.names))
            for t in shard.tensors:
                eng.pbar.set_postfix_str(t.name, refresh=False)
                _write_tensor(eng, t, reads, writer, counts, model_stats)
            writer.close(shard, counts.to_dict())
    finally:
        reads.close()


def _compute(plan: MergePlan, progress: Progress) -> int:
    """Model statistics, then every missing shard into the work directory; returns bytes written."""
    opts = plan.options
    in_bytes = sum(DTYPES[t.in_dtype][1] * t.numel for t in plan.tensors if t.merge) * (1 + len(plan.experts))
    todo = sum(s.nbytes for s in plan.shards[len(progress.done) :])
    reuse_freed_memory()
    with TorchThreads(opts.device):
        eng = _Engine(plan, None)
        try:
            with progress_bar(in_bytes * plan.method.model_passes(plan.params), "statistics", opts.progress) as bar:
                eng.pbar = bar
                model_stats = _model_stats(eng, progress)
            writer = ShardStream(progress.work, progress)
            with progress_bar(todo, f"merge {plan.config.method}", opts.progress) as bar:
                eng.pbar = bar
                try:
                    _merge_shards(eng, progress, writer, model_stats)
                except BaseException:
                    writer.shutdown(failed=True)
                    raise
                writer.shutdown(failed=False)
        finally:
            eng.close()
    return writer.bytes


def _statistics(plan: MergePlan, progress: Progress) -> tuple[dict[str, Any], list[str]]:
    """Summed per-shard counters (from this run and any interrupted one) and their warnings."""
    names = [e.name for e in plan.config.experts]
    if progress.finished is not None:
        stats, warnings = progress.finished["statistics"], list(progress.finished.get("warnings", []))
    else:
        counts = DeltaCounts(len(names))
        for entry in progress.done:
            counts.add(DeltaCounts.from_dict(progress.stats[entry["file"]]))
        stats, warnings = summarize(counts, names, plan.options.warn_rounding)
    for w in warnings:
        log.warning("%s", w)
    return stats, warnings


def run_merge(
    config: MergeConfig, out_dir: str | Path, options: MergeOptions | None = None, notes: Sequence[str] = ()
) -> MergeReport:
    """Merge `config.experts` into `out_dir` (HF safetensors, sharded, with index and manifest).

    Shards are written into ``out_dir/incomplete_merge/`` and validated there; only a merge that
    validates is moved up into `out_dir`, with the index written last. A merge that fails or is killed
    leaves nothing loadable; ``options.resume`` continues from the work directory.

    Args:
        config: What to merge (validated here).
        out_dir: Output directory; must be empty or absent, unless `options.resume`.
        options: How to run it (defaults: CPU, all cores, 2 GB shards).
        notes: Configuration warnings to record in the manifest (e.g. mergekit semantics that differ).

    Returns:
        A MergeReport; its `manifest` is also written to ``out_dir/merge_manifest.json``.

    Raises:
        ConfigError: bad configuration or mismatching inputs, before anything is written.
        MergeValidationError: the merge failed validation (NaN/Inf); its report is in the work directory.
        MergeIOError: reading or writing failed (e.g. disk full); the work directory is kept for resume.
    """
    options = options or MergeOptions()
    options.validate()
    config.validate()
    check_device(options)
    t0 = time.perf_counter()
    plan = build_plan(config, options)
    side_source(plan)  # a bad copy_from is refused now, not after the merge
    progress = Progress.start(Path(out_dir), plan, options.resume)
    if progress.finished is not None:
        return _revalidate(plan, progress, t0)
    try:
        written = _compute(plan, progress)
        validation = validate_output(progress.work, plan, index=False, scan=options.scan, progress=options.progress)
        stats, warnings = _statistics(plan, progress)
        report = {
            "statistics": stats,
            "validation": validation,
            "warnings": warnings,
            "config_warnings": list(notes),
            "copied_files": [],
            "run": _run_info(options, time.perf_counter() - t0),
        }
        if not validation["ok"]:
            write_manifest(progress.work, plan, progress.done, report)
            raise validation_error(validation, progress.work)
        report["copied_files"] = copied = copy_side_files(progress.work, plan)
        manifest = write_manifest(progress.work, plan, progress.done, report)
        publish(progress, plan, [*copied, MANIFEST])
    except OSError as exc:
        raise io_error(exc, progress.work) from exc
    return MergeReport(progress.out, manifest, time.perf_counter() - t0, written, tuple(warnings))


def _run_info(options: MergeOptions, seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 3),
        "device": options.device,
        "threads": options.compute_threads(),
        "chunk_elems": options.chunk_elems,
        "resumed": options.resume,
    }


def _revalidate(plan: MergePlan, progress: Progress, t0: float) -> MergeReport:
    """`out` already holds this merge, complete: validate it again in place; change nothing."""
    opts = plan.options
    log.info("%s already holds this merge; validating it again", progress.out)
    validation = validate_output(progress.out, plan, scan=opts.scan, progress=opts.progress)
    if not validation["ok"]:
        raise validation_error(validation, None)
    manifest = progress.finished
    _statistics(plan, progress)
    return MergeReport(progress.out, manifest, time.perf_counter() - t0, 0, tuple(manifest.get("warnings", [])))
