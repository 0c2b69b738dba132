"""Per-thread reusable block buffers.

Every block allocates the same few block-sized temporaries. Fresh allocations of that size fault their
pages in again each time, which costs more than the arithmetic on them, so each compute thread keeps
one buffer per slot and reuses it (results that outlive the block are never taken from here).
"""

from __future__ import annotations

import threading
from typing import Any

_LOCAL = threading.local()


def scratch(slot: str, rows: int, n: int, dtype: Any) -> Any:
    """A (rows, n) C-contiguous numpy array of this thread's buffer `slot` (contents undefined)."""
    import numpy as np

    dtype = np.dtype(dtype)
    store = _LOCAL.__dict__.setdefault("buffers", {})
    buf = store.get((slot, dtype))
    if buf is None or buf.size < rows * n:
        buf = store[(slot, dtype)] = np.empty(rows * n, dtype=dtype)
    return buf[: rows * n].reshape(rows, n)
