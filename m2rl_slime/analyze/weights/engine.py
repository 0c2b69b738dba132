"""Streaming driver of the weight analysis: which tensors, the read schedule, the compute pool, and the
per-tensor partial results that make a run resumable.

Tensors are read in the base's shard/offset order, in chunks of ``chunk_elems`` elements of the base and
every expert (memory-mapped by a read-ahead thread: the merge's reader), cut into ``block_elems`` blocks
that run in a thread pool. A finished tensor is appended as one JSON line to ``.weights_partial.jsonl``
in the output directory; ``--resume`` keeps the lines of the same run (same inputs and options) and
reads only the tensors that are missing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import __version__
from ...errors import ConfigError
from ...merge.io import AdviseAhead, Checkpoint, FileCache, ReadAhead, TensorInfo, advise_range, map_array
from ...merge.runtime import BlasThreads, progress_bar, reuse_freed_memory
from .config import GROUP, WeightsOptions, bitwise_equivalent
from .kernel import NATIVE_DTYPES, NATIVE_MAX_EXPERTS, Sums, TensorJob, block_sums, expected_rotated
from .names import TensorKind
from .srht import _key

log = logging.getLogger(__name__)
PARTIAL = ".weights_partial.jsonl"
_SYNC_SECONDS = 2.0
_FORMAT = 4  # of the partial records (2: the exact rotation expectation, one sign vector per tensor; 3: numpy
# kernel; 4: the block kernel, native or numpy, is part of the run id: a resume never mixes the two)


@dataclass(frozen=True, slots=True)
class Target:
    """One tensor to analyse."""

    name: str
    kind: TensorKind
    info: TensorInfo
    projected: bool


@dataclass(frozen=True, slots=True)
class Inputs:
    """The opened, cross-checked checkpoints and the tensors selected from them."""

    base: Checkpoint
    experts: tuple[tuple[str, Checkpoint], ...]
    targets: tuple[Target, ...]
    layers: tuple[int, ...]
    table_layers: tuple[int, ...]
    other: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.experts)

    def read_bytes(self, targets: Sequence[Target] | None = None) -> int:
        """Bytes of `targets` (default: all) in the base and every expert: what analysing them reads."""
        return sum(t.info.nbytes for t in (self.targets if targets is None else targets)) * (1 + len(self.experts))

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        e = len(self.experts)
        return tuple((i, j) for i in range(e) for j in range(i + 1, e))


def _shifts(seed: int, tensor: str, draws: int) -> tuple[int, ...]:
    import numpy as np

    if not draws:
        return ()
    rng = np.random.Generator(np.random.Philox(key=np.array([_key(seed, "perm\0" + tensor), 0], dtype=np.uint64)))
    return tuple(int(s) for s in rng.integers(1, GROUP, size=draws))


def job_for(t: Target, inputs: Inputs, options: WeightsOptions) -> TensorJob:
    """The per-tensor computation: rule, permutation offsets, and one SRHT per seed when projected."""
    from .srht import Srht

    projection = None
    if t.projected and len(inputs.experts) > 1:
        projection = Srht.build(t.name, t.info.numel, options.seed, options.proj_dim, options.seeds)
    return TensorJob(
        t.name,
        t.info.numel,
        options.eta,
        bitwise_equivalent(t.info.dtype, options.eta),
        t.info.dtype,
        _shifts(options.seed, t.name, options.perm_draws),
        inputs.pairs,
        projection,
        native=options.native() and t.info.dtype in NATIVE_DTYPES and len(inputs.experts) <= NATIVE_MAX_EXPERTS,
    )


def run_id(inputs: Inputs, options: WeightsOptions) -> str:
    """A hash of everything that decides the numbers: package version, input fingerprints and options."""
    from ...merge.plan import fingerprint

    ident = {
        "version": __version__,
        "format": _FORMAT,
        "base": fingerprint(inputs.base, options.fingerprint),
        "experts": [[n, fingerprint(c, options.fingerprint)] for n, c in inputs.experts],
        "targets": [[t.name, t.projected] for t in inputs.targets],
        "options": [options.eta, options.proj_dim, options.seeds, options.perm_draws, options.seed],
        "kernel": "native" if options.native() else "numpy",
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


class PartialFile:
    """Finished tensors of one run, one JSON line each, under a header line holding the run id."""

    def __init__(self, out: Path, ident: str, resume: bool):
        self.path = out / PARTIAL
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            if not resume:
                raise ConfigError(f"{out} holds an interrupted weights analysis; add --resume to continue it")
            self._load(ident)
        elif resume:
            log.info("--resume: nothing to resume in %s, starting afresh", out)
        mode = "a" if self.records else "w"
        self._file = open(self.path, mode, encoding="utf-8")  # noqa: SIM115 (appended to until close)
        if mode == "w":
            self._file.write(json.dumps({"analysis": "weights", "run_id": ident}) + "\n")
            self._file.flush()
        self._synced = time.monotonic()

    def _load(self, ident: str) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0])
        except (IndexError, json.JSONDecodeError):
            header = {}
        if header.get("run_id") != ident:
            raise ConfigError(
                f"{self.path}: an interrupted analysis of other inputs or options; delete it or use another --out"
            )
        kept = [lines[0]]
        for line in lines[1:]:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by the interruption
                break
            self.records[rec["name"]] = rec
            kept.append(line)
        self.path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        log.info("resume: %d tensors already analysed", len(self.records))

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["name"]] = record
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        if time.monotonic() - self._synced > _SYNC_SECONDS:
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def record(t: Target, sums: Sums, job: TensorJob) -> dict[str, Any]:
    """The JSON-able partial result of one tensor."""
    return {
        "name": t.name,
        "layer": t.kind.layer,
        "kind": t.kind.kind,
        "dtype": t.info.dtype,
        "numel": t.info.numel,
        "bitwise": job.bitwise,
        "changed": sums.changed.tolist(),
        "nonfinite": sums.nonfinite.tolist(),
        "inter": sums.inter.tolist(),
        "dot": sums.dot.tolist(),
        "sq": sums.sq.tolist(),
        "perm": sums.perm.tolist(),
        "perm_expected": expected_rotated(sums, t.info.numel).tolist(),
        "proj": None if sums.proj is None else {"k": sums.k, "n": job.projection.n, "y": _proj(sums, job)},
    }


def _proj(sums: Sums, job: TensorJob) -> list[list[list[float]]]:
    """Per seed and pair: [<Px, Py>, |Px|^2, |Py|^2] of the projected overlap vectors."""
    p = len(job.pairs)
    out = []
    for y in sums.proj:
        x, z = y[:p], y[p:]
        out.append([[float(x[q] @ z[q]), float(x[q] @ x[q]), float(z[q] @ z[q])] for q in range(p)])
    return out


class Streamer:
    """Runs `block_sums` over every target's blocks, a bounded number in flight, results in order."""

    def __init__(self, inputs: Inputs, options: WeightsOptions):
        self.inputs, self.options = inputs, options
        self.files = FileCache()
        self.threads = options.compute_threads()

    def _infos(self, t: Target) -> list[TensorInfo]:
        return [t.info] + [c.tensors[t.name] for _, c in self.inputs.experts]

    def _read(self, t: Target, c0: int, c1: int, k: int, advise: AdviseAhead) -> tuple[int, Callable[[], Any]]:
        infos = self._infos(t)
        nbytes = sum(i.itemsize for i in infos) * (c1 - c0)

        def read() -> list[Any]:
            for info in infos:  # a no-op where the advice ahead already reached this chunk
                advise_range(self.files, info, c0, c1)
            views = [map_array(self.files, info, c0, c1) for info in infos]
            advise.ahead(k)  # keep the disk busy beyond the mapped window
            return views

        return nbytes, read

    def _chunks(self, t: Target) -> list[tuple[int, int]]:
        step = self.options.chunk_elems
        return [(s, min(s + step, t.info.numel)) for s in range(0, t.info.numel, step)]

    def _blocks(self, todo: Sequence[Target], reads: ReadAhead) -> Iterator[tuple[Target, int, int, list[Any]]]:
        step = self.options.block()
        for t in todo:
            for c0, c1 in self._chunks(t):
                data = reads.next()
                for s in range(c0, c1, step):
                    e = min(s + step, c1)
                    yield t, s, e, [x[s - c0 : e - c0] for x in data]

    def _schedule(self, todo: Sequence[Target]) -> ReadAhead:
        item = max((t.info.itemsize for t in todo), default=2)
        chunk_bytes = self.options.chunk_elems * item * (1 + len(self.inputs.experts))
        chunks = [(t, c0, c1) for t in todo for c0, c1 in self._chunks(t)]
        ranges = [(info, c0, c1) for t, c0, c1 in chunks for info in self._infos(t)]
        advise = AdviseAhead(self.files, ranges, self.options.advise_ahead * chunk_bytes)
        ends = list(itertools.accumulate(len(self._infos(t)) for t, _, _ in chunks))  # last range of each chunk
        jobs = (self._read(t, c0, c1, ends[k] - 1, advise) for k, (t, c0, c1) in enumerate(chunks))
        return ReadAhead(jobs, self.options.read_ahead * chunk_bytes)

    def read_all(self, todo: Sequence[Target]) -> int:
        """Run the read schedule of `todo` without computing anything (what the reader alone costs, for the
        benchmark); returns the bytes read."""
        reads = self._schedule(todo)
        try:
            for _ in range(sum(len(self._chunks(t)) for t in todo)):
                reads.next()
        finally:
            reads.close()
            self.files.close()
        return self.inputs.read_bytes(todo)

    def run(self, todo: Sequence[Target], done: Callable[[dict[str, Any]], None]) -> None:
        """Analyse `todo`, calling `done(record)` for every finished tensor, in order."""
        total = self.inputs.read_bytes(todo)
        reads = self._schedule(todo)
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="analyze-weights")
        jobs = {t.name: job_for(t, self.inputs, self.options) for t in todo}
        acc: dict[str, Sums] = {}
        left = {t.name: -(-t.info.numel // self.options.block()) for t in todo}
        pending: deque[tuple[Target, int, Future[Sums]]] = deque()
        reuse_freed_memory()

        def consume(bar: Any) -> None:
            t, nbytes, fut = pending.popleft()
            part = fut.result()
            acc[t.name] = acc[t.name].add(part) if t.name in acc else part
            left[t.name] -= 1
            bar.update(nbytes)
            if left[t.name] == 0:
                done(record(t, acc.pop(t.name), jobs[t.name]))

        try:
            with BlasThreads(), progress_bar(total, "analyze weights", self.options.progress) as bar:
                for t, s, e, views in self._blocks(todo, reads):
                    bar.set_postfix_str(t.name, refresh=False)
                    fut = pool.submit(block_sums, jobs[t.name], s, views[0], views[1:])
                    pending.append((t, sum(v.nbytes for v in views), fut))
                    while len(pending) >= 2 * self.threads:
                        consume(bar)
                while pending:
                    consume(bar)
        finally:
            for _, _, fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            reads.close()
            self.files.close()
