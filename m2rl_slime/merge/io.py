"""Streaming safetensors I/O: checkpoint index, chunked memory-mapped reads with read-ahead, shard writer.

Reads never load a whole checkpoint: `map_range` memory-maps just the byte range of one tensor chunk
(``MAP_POPULATE``, so the page faults happen in the read-ahead thread, not in the compute threads) and
returns a tensor view over it. The mapping is unmapped as soon as the last view is dropped, so the
resident set stays at the read-ahead window instead of growing to the size of the inputs.

Small files are written atomically (`write_atomic`, `copy_atomic`: temporary name, fsync, rename; the
temporary file never survives a failure). Shards are streamed by `writer.ShardWriter`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import mmap
import os
import shutil
import struct
import sys
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, M2RLError

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
TMP_SUFFIX = ".tmp"

# safetensors dtype code -> (torch dtype attribute, item size in bytes)
DTYPES: dict[str, tuple[str, int]] = {
    "BF16": ("bfloat16", 2),
    "F16": ("float16", 2),
    "F32": ("float32", 4),
    "F64": ("float64", 8),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
FLOAT_CODES = frozenset({"BF16", "F16", "F32", "F64"})
OUT_CODES = {"bf16": "BF16", "fp16": "F16", "fp32": "F32"}


def torch_dtype(code: str) -> Any:
    """The torch dtype of a safetensors dtype code."""
    import torch

    return getattr(torch, DTYPES[code][0])


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Where one tensor lives: its shard file and the absolute byte offset of its data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    offset: int
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype][1]


def read_header(path: Path) -> tuple[int, dict[str, Any]]:
    """Parse a safetensors header; return (data start offset, header dict without ``__metadata__``).

    Raises:
        ConfigError: the file is missing, truncated or not safetensors.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConfigError(f"{path}: not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or n > min(size - 8, 100_000_000):
                raise ConfigError(f"{path}: not a safetensors file (header length {n} for a {size}-byte file)")
            header = json.loads(f.read(n))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read safetensors header: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{path}: corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    return 8 + n, header


def tensor_infos(path: Path) -> list[TensorInfo]:
    start, header = read_header(path)
    size = path.stat().st_size
    out = []
    for name, entry in header.items():
        try:
            code, shape, (b, e) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}: malformed header entry for tensor {name!r}") from None
        if code not in DTYPES:
            raise ConfigError(f"{path}: tensor {name!r} has unsupported dtype {code}; supported: {', '.join(DTYPES)}")
        info = TensorInfo(name, code, shape, path, start + int(b), int(e) - int(b))
        if info.nbytes != info.numel * info.itemsize or start + int(e) > size:
            raise ConfigError(f"{path}: tensor {name!r} byte range [{b}, {e}) does not match its shape/file size")
        out.append(info)
    out.sort(key=lambda t: t.offset)
    return out


class Checkpoint:
    """An HF safetensors checkpoint directory, sharded (with an index) or single-file.

    Attributes:
        path: The directory.
        tensors: Tensor name -> TensorInfo, ordered by shard (index order) and then by offset.
        config: The parsed ``config.json`` (empty when absent).
        files: The safetensors files, in order.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: not a checkpoint directory (does not exist or is a file)")
        self.files = self._find_files()
        self.tensors: dict[str, TensorInfo] = {}
        for f in self.files:
            for info in tensor_infos(f):
                if info.name in self.tensors:
                    raise ConfigError(f"{self.path}: tensor {info.name!r} appears in two shards")
                self.tensors[info.name] = info
        self._check_index()
        self.config = self._read_json("config.json")

    def _find_files(self) -> list[Path]:
        index = self.path / INDEX_NAME
        if index.is_file():
            weight_map = self._read_json(INDEX_NAME).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ConfigError(f"{index}: no weight_map")
            self._weight_map = weight_map
            files = list(dict.fromkeys(weight_map.values()))
            missing = [f for f in files if not (self.path / f).is_file()]
            if missing:
                raise ConfigError(f"{index}: shard {missing[0]} is listed but missing")
            return [self.path / f for f in files]
        self._weight_map = None
        if (self.path / SINGLE_NAME).is_file():
            return [self.path / SINGLE_NAME]
        found = sorted(self.path.glob("*.safetensors"))
        if len(found) == 1:
            return found
        if not found:
            raise ConfigError(f"{self.path}: no safetensors weights (expected {SINGLE_NAME} or {INDEX_NAME})")
        raise ConfigError(f"{self.path}: {len(found)} safetensors files but no {INDEX_NAME}")

    def _check_index(self) -> None:
        if self._weight_map is None:
            return
        for name, file in self._weight_map.items():
            info = self.tensors.get(name)
            if info is None or info.file.name != file:
                raise ConfigError(f"{self.path / INDEX_NAME}: tensor {name!r} is not in {file}")
        extra = [n for n in self.tensors if n not in self._weight_map]
        if extra:
            raise ConfigError(f"{self.path / INDEX_NAME}: tensor {extra[0]!r} is in a shard but not in the index")

    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: unreadable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return data


_PRIMED = threading.Event()


def _prime_frombuffer() -> None:
    """torch warns once per process that an mmap'd buffer is read-only; trigger that once, silently."""
    import torch

    if not _PRIMED.is_set():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.frombuffer(bytes(8), dtype=torch.uint8)
        _PRIMED.set()


class FileCache:
    """Open read-only descriptors, one per input file, shared by the read-ahead threads."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}
        self._lock = threading.Lock()

    def fd(self, path: Path) -> int:
        with self._lock:
            if path not in self._fds:
                self._fds[path] = os.open(path, os.O_RDONLY)
            return self._fds[path]

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def advise_range(files: FileCache, info: TensorInfo, start: int, stop: int) -> None:
    """Start reading elements [start, stop) of `info` into the page cache (asynchronous, large requests)."""
    if hasattr(os, "posix_fadvise") and stop > start:
        lo = info.offset + start * info.itemsize
        os.posix_fadvise(files.fd(info.file), lo, (stop - start) * info.itemsize, os.POSIX_FADV_WILLNEED)


class AdviseAhead:
    """Ask the kernel to read a fixed sequence of ranges into the page cache, a byte budget ahead of use.

    ``posix_fadvise(WILLNEED)`` starts asynchronous reads and returns, so the disk keeps a deep queue even
    while the thread that maps the data waits for a CPU; the pages it fills are page cache, not this
    process's memory. Call `ahead(k)` when range k is about to be used.

    Args:
        files: The shared descriptors.
        ranges: ``(info, start, stop)`` element ranges, in the order they will be used.
        max_bytes: Bytes advised beyond the range in use (0: only the range in use).
    """

    def __init__(self, files: FileCache, ranges: Sequence[tuple[TensorInfo, int, int]], max_bytes: int):
        self._files, self._ranges, self._max = files, list(ranges), max_bytes
        sizes = [(stop - start) * info.itemsize for info, start, stop in self._ranges]
        self._ends = list(itertools.accumulate(sizes))
        self._starts = [end - size for end, size in zip(self._ends, sizes)]
        self._next = 0  # the first range not advised yet
        self._lock = threading.Lock()

    def ahead(self, k: int) -> None:
        """Advise every range up to k, and after it those that start within `max_bytes` of its end."""
        limit = (self._ends[k] if k < len(self._ends) else 0) + self._max
        with self._lock:
            while self._next < len(self._ranges) and self._starts[self._next] < limit:
                advise_range(self._files, *self._ranges[self._next])
                self._next += 1


# madvise(MADV_POPULATE_READ) (Linux >= 5.14): fault every page of a mapping in, waiting for its read;
# None once the kernel refused it (then every page is touched instead)
_POPULATE_READ: int | None = getattr(mmap, "MADV_POPULATE_READ", 22) if sys.platform.startswith("linux") else None


def _make_resident(mm: mmap.mmap) -> None:
    """Return once every page of `mm` is read and mapped.

    The kernel's populate is used where it exists: touching one byte per page from Python cost the
    analysis's reader up to 6.7 CPU s for 7.15 GB read cold, the madvise 2.0 s (docs/analysis.md).
    """
    global _POPULATE_READ
    if _POPULATE_READ is not None:
        try:
            mm.madvise(_POPULATE_READ)
            return
        except OSError:  # EINVAL: a kernel older than 5.14
            _POPULATE_READ = None
    import numpy as np

    np.frombuffer(mm, dtype=np.uint8)[:: mmap.PAGESIZE].max()


def _mapped(files: FileCache, info: TensorInfo, start: int, stop: int) -> tuple[mmap.mmap, int]:
    """A read-only memory map covering elements [start, stop) of `info`, every page resident, and the byte
    offset of element `start` in it.

    The pages are faulted in here, in the calling (read-ahead) thread: ``MAP_POPULATE``, then
    `_make_resident`, because populate alone is best-effort.
    """
    lo, hi = info.offset + start * info.itemsize, info.offset + stop * info.itemsize
    aligned = lo - lo % mmap.ALLOCATIONGRANULARITY
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    mm = mmap.mmap(files.fd(info.file), hi - aligned, flags=flags, prot=mmap.PROT_READ, offset=aligned)
    _make_resident(mm)
    return mm, lo - aligned


def map_range(files: FileCache, info: TensorInfo, start: int, stop: int) -> Any:
    """A 1-D read-only tensor over elements [start, stop) of `info`, backed by its own memory map (see
    `_mapped`). The map is released when the tensor and all its views are garbage.
    """
    import torch

    _prime_frombuffer()
    if stop == start:
        return torch.empty(0, dtype=torch_dtype(info.dtype))
    mm, off = _mapped(files, info, start, stop)
    count, item = stop - start, info.itemsize
    if off % item:  # misaligned tensor data: copy instead of viewing
        raw = torch.frombuffer(mm, dtype=torch.uint8, count=count * item, offset=off).clone()
        return raw.view(torch_dtype(info.dtype))
    return torch.frombuffer(mm, dtype=torch_dtype(info.dtype), count=count, offset=off)


# numpy has no bfloat16: its elements are read as their raw 16-bit patterns
NUMPY_STORAGE = {"BF16": "uint16", "F16": "float16", "F32": "float32", "F64": "float64"}


def map_array(files: FileCache, info: TensorInfo, start: int, stop: int) -> Any:
    """`map_range` as a read-only numpy array of the storage type (`NUMPY_STORAGE`; floating dtypes only),
    for readers that never import torch."""
    import numpy as np

    dtype = np.dtype(NUMPY_STORAGE[info.dtype])
    if stop == start:
        return np.empty(0, dtype)
    mm, off = _mapped(files, info, start, stop)
    if off % dtype.itemsize:  # misaligned tensor data: copy instead of viewing
        return np.frombuffer(mm, np.uint8, (stop - start) * dtype.itemsize, off).copy().view(dtype)
    return np.frombuffer(mm, dtype, stop - start, off)


class ReadAhead:
    """Run a fixed sequence of read jobs in a background thread, ahead of the consumer, within a byte budget.

    Args:
        jobs: ``(nbytes, fn)`` pairs in the order they will be consumed; ``fn()`` does the read.
        max_bytes: Bytes that may be in flight beyond the job being consumed (at least one job always is).
        threads: I/O threads.
    """

    def __init__(self, jobs: Iterable[tuple[int, Callable[[], Any]]], max_bytes: int, threads: int = 1):
        self._jobs = iter(jobs)
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="merge-read")
        self._pending: deque[tuple[int, Future[Any]]] = deque()
        self._max = max_bytes
        self._bytes = 0
        self._next: tuple[int, Callable[[], Any]] | None = next(self._jobs, None)
        self._fill()

    def _fill(self) -> None:
        while self._next is not None and (not self._pending or self._bytes + self._next[0] <= self._max):
            nbytes, fn = self._next
            self._pending.append((nbytes, self._pool.submit(fn)))
            self._bytes += nbytes
            self._next = next(self._jobs, None)

    def next(self) -> Any:
        """The result of the next job (blocks until it is read)."""
        if not self._pending:
            raise M2RLError("internal error: read schedule exhausted (a method read more passes than declared)")
        nbytes, fut = self._pending.popleft()
        self._bytes -= nbytes
        result = fut.result()
        self._fill()
        return result

    def close(self) -> None:
        for _, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename in it is durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a small file under a temporary name, fsync it and rename it into place."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy a file under a temporary name and rename it into place (the temporary file never survives)."""
    tmp = dst.with_name(dst.name + TMP_SUFFIX)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path, block: int = 16 << 20) -> str:
    """The sha256 hex digest of a file's bytes."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            sha.update(chunk)
    return sha.hexdigest()
