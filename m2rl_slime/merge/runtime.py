"""Process settings for a merge run: torch and BLAS threads, glibc block reuse, device check, progress bars."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .config import MergeOptions


class TorchThreads:
    """Pin torch's intra-op threads to 1 while our own pool parallelises blocks (CPU); restore after."""

    def __init__(self, device: str):
        self._device = device
        self._saved = 0

    def __enter__(self) -> None:
        import torch

        self._saved = torch.get_num_threads()
        if self._device == "cpu":
            torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self._saved)


# the thread-count setters of the OpenBLAS builds numpy ships (scipy-openblas, 64-bit ints) and of plain ones
_OPENBLAS_SETTERS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


def _openblas_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (Linux; numpy must be imported first)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


class BlasThreads:
    """Pin numpy's OpenBLAS to one thread while our own pool parallelises blocks; restore after.

    OpenBLAS threads busy-wait between calls, so with one compute thread per core they take CPU from the
    pool (benchmarks/analyze_kernel.py compares the SRHT with and without this). Without OpenBLAS (or off Linux)
    this does nothing.
    """

    def __init__(self) -> None:
        self._restore: list[tuple[Any, int]] = []

    def __enter__(self) -> None:
        import ctypes

        import numpy  # noqa: F401 (loads its BLAS)

        for path in _openblas_libraries():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for setter, getter in _OPENBLAS_SETTERS:
                if hasattr(lib, setter) and hasattr(lib, getter):
                    set_, get = getattr(lib, setter), getattr(lib, getter)
                    self._restore.append((set_, int(get())))
                    set_(1)
                    break

    def __exit__(self, *exc: object) -> None:
        for set_, value in self._restore:
            set_(value)
        self._restore.clear()


def reuse_freed_memory() -> None:
    """Ask glibc to keep freed compute blocks (1 MB each) in the heap instead of unmapping them.

    Every block operation allocates fresh tensors; by default glibc serves each from a new mapping and
    every page faults again, which makes elementwise ops 3-8x slower. Process-wide, harmless elsewhere.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: up to 32 MB from the heap
    mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: keep up to 128 MB of free heap


def check_device(options: MergeOptions) -> None:
    import torch

    if options.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available here (torch.cuda.is_available() is False)")


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled, dynamic_ncols=True
    )
