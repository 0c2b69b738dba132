"""The epoch cursor of `SFTDataSource`: which blend rows come next (pure; not a slime hook).

Same walk as slime's `RolloutDataSource`: rows are served in order, an epoch ends after every row was
served once, and a batch that crosses the end continues with the next epoch. With ``--rollout-shuffle``
every epoch has its own permutation, derived from ``(seed, epoch)`` by numpy's `SeedSequence` (slime
reseeds the process-wide `random` module with ``seed + epoch`` instead). The permutation is an int32
array (4 bytes a row; int64 past 2**31 rows) rebuilt in place at each epoch change; the state is two
integers, so a resumed run rebuilds exactly the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError


def epoch_permutation(size: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded permutation of ``range(size)`` for one epoch."""
    order = np.arange(size, dtype=np.int32 if size < 2**31 else np.int64)
    np.random.default_rng(np.random.SeedSequence([seed, epoch])).shuffle(order)
    return order


class EpochCursor:
    """Position in the (optionally shuffled) epochs over `size` rows.

    Args:
        size: Rows in the blend (> 0).
        seed: Seed of the per-epoch permutations (>= 0).
        shuffle: Permute each epoch (``--rollout-shuffle``); else rows come in blend order.
    """

    def __init__(self, size: int, seed: int, shuffle: bool):
        if size <= 0:
            raise ConfigError("the SFT blend has no rows")
        if seed < 0:
            raise ConfigError(f"the SFT data seed must be >= 0, got {seed}")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch_id = 0
        self.sample_offset = 0
        self._order: np.ndarray | None = None
        self._order_epoch = -1

    def _epoch_order(self) -> np.ndarray | None:
        if not self.shuffle:
            return None
        if self._order_epoch != self.epoch_id:
            self._order = None  # free the old permutation before building the next one
            self._order = epoch_permutation(self.size, self.seed, self.epoch_id)
            self._order_epoch = self.epoch_id
        return self._order

    def take(self, n: int) -> np.ndarray:
        """The next `n` row ids (crossing epoch ends as often as needed)."""
        parts = []
        while n > 0:
            stop = min(self.size, self.sample_offset + n)
            order = self._epoch_order()
            span = np.arange(self.sample_offset, stop, dtype=np.int64)
            parts.append(span if order is None else order[self.sample_offset : stop].astype(np.int64))
            n -= stop - self.sample_offset
            self.sample_offset = stop
            if self.sample_offset == self.size:
                self.epoch_id += 1
                self.sample_offset = 0
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_id": self.epoch_id, "sample_offset": self.sample_offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        epoch, offset = int(state["epoch_id"]), int(state["sample_offset"])
        if epoch < 0 or not 0 <= offset < self.size:
            raise ConfigError(f"SFT data source state {state} does not fit a blend of {self.size} rows")
        self.epoch_id, self.sample_offset = epoch, offset
