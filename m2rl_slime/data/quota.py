"""Per-domain quotas of the trained batch, for slime's over-sampling loop. Pure: no slime import.

slime's ``generate_rollout`` submits ``--over-sampling-batch-size`` groups at a time and trains on the first
``--rollout-batch-size`` groups that finish and pass ``--dynamic-sampling-filter-path``; the rest are
aborted. Left alone, that keeps the domains with short responses and drops the slow ones. `BatchQuota`
turns the filter into a per-domain admission test: each rollout's trained batch gets exactly
``quota[d]`` groups of domain ``d`` (largest-remainder rounding of ``batch_size * p_d`` with the
remainder carried to the next rollout, so after k rollouts every domain has trained ``k * batch_size * p_d``
groups to within one), and the data source draws what is still missing.

Lifecycle, as slime drives it: the first `get_samples` of a rollout calls `start`; every group handed out
is recorded with `handed_out`; the filter calls `decide` on every finished group; the batch is complete
when every quota is filled, which is exactly when slime stops the rollout.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .mixture import allocate


@dataclass(frozen=True, slots=True)
class Verdict:
    """A dynamic-sampling filter's answer for one group (slime's ``DynamicFilterOutput``, without slime).

    Attributes:
        keep: The filter accepts the group.
        reason: Why it rejects the group (slime counts drops per reason).
        keep_when_insufficient: Keep a rejected group when dropping it would leave the batch short.
    """

    keep: bool
    reason: str | None = None
    keep_when_insufficient: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What the quota filter answers slime for one group.

    Attributes:
        keep: The group joins the trained batch.
        reason: Drop reason, prefixed with the domain (slime logs ``rollout/dynamic_filter/drop_<reason>``).
        forced: Kept although the inner filter rejected it (the domain ran out of patience, see `BatchQuota`).
    """

    keep: bool
    reason: str | None = None
    forced: bool = False


class BatchQuota:
    """Quotas of one rollout's trained batch and the fate of every group handed out for it.

    Args:
        batch_size: slime's ``--rollout-batch-size`` (groups per trained batch).
        patience: A domain whose groups the inner filter has rejected more than ``patience * quota`` times
            in one rollout gets its next groups kept regardless (otherwise a domain the filter always
            rejects, e.g. all-solved groups under a non-zero-std filter, would stall the rollout forever).
    """

    def __init__(self, batch_size: int, patience: float = 4.0):
        if batch_size < 1:
            raise ConfigError(f"--rollout-batch-size must be >= 1 for per-domain quotas, got {batch_size}")
        if not (patience > 0 and math.isfinite(patience)):
            raise ConfigError(f"m2rl_data.quota.patience must be a positive number, got {patience}")
        self.batch_size = batch_size
        self.patience = float(patience)
        self.carry: dict[str, float] = {}
        self.rollouts = 0
        self.active = False
        self.quota: dict[str, int] = {}
        self.handed: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.forced: Counter[str] = Counter()

    @property
    def complete(self) -> bool:
        """Every quota of the current batch is filled (slime has its ``rollout_batch_size`` groups)."""
        return self.active and sum(self.kept.values()) >= self.batch_size

    @property
    def needs_start(self) -> bool:
        """The next `get_samples` opens a new rollout's batch."""
        return not self.active or self.complete

    def start(self, probs: Mapping[str, float]) -> None:
        """Open the next rollout's batch: quotas from the current mixture, counters reset."""
        self.quota, self.carry = allocate(self.batch_size, probs, self.carry)
        for counter in (self.handed, self.kept, self.dropped, self.rejected, self.forced):
            counter.clear()
        self.active = True
        self.rollouts += 1

    def open(self) -> dict[str, int]:
        """Pool -> groups the batch still needs beyond those kept or in flight (negative: over-drawn)."""
        return {name: q - self.handed[name] + self.dropped[name] for name, q in self.quota.items()}

    def handed_out(self, pool: str, count: int = 1) -> None:
        """Record groups of `pool` given to slime for the current batch."""
        self.handed[pool] += count

    def decide(self, pool: str, verdict: Verdict) -> Decision:
        """Admit or drop one finished group of `pool`, given the inner filter's verdict.

        Order: a full domain drops the group; an accepted group is kept; a rejected one is kept anyway when
        the inner filter allows it for a short batch (``keep_when_insufficient``) and the groups of its
        domain still in flight could not fill the quota, or when the domain has exhausted its patience.
        """
        quota = self.quota.get(pool, 0)
        if self.kept[pool] >= quota:
            self.dropped[pool] += 1
            return Decision(False, f"quota_full_{pool}")
        if verdict.keep:
            self.kept[pool] += 1
            return Decision(True)
        in_flight = self.handed[pool] - self.kept[pool] - self.dropped[pool] - 1  # excluding this group
        if verdict.keep_when_insufficient and self.kept[pool] + in_flight < quota:
            self.kept[pool] += 1
            return Decision(True)
        if self.rejected[pool] >= max(1, math.ceil(self.patience * quota)):
            self.kept[pool] += 1
            self.forced[pool] += 1
            return Decision(True, forced=True)
        self.rejected[pool] += 1
        self.dropped[pool] += 1
        return Decision(False, f"{pool}_{verdict.reason or 'filtered'}")

    def state_dict(self) -> dict[str, Any]:
        """The carried rounding remainders (a save happens between rollouts, when no batch is open)."""
        return {"carry": dict(self.carry), "rollouts": self.rollouts}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.carry = {str(k): float(v) for k, v in state.get("carry", {}).items()}
        self.rollouts = int(state.get("rollouts", 0))
        self.active = False
