"""Optional curriculum: re-weight prompt pools from observed pass rates.

slime hook: ``--rollout-all-samples-process-path m2rl_slime.data.curriculum.observe``. slime calls it
once per rollout with every generated group (including groups a dynamic filter dropped) and the data
source's bound ``get_samples`` method (what ``generate_rollout`` hands it). `observe` sums the rewards per pool (``metadata["source_name"]``) and hands them to
`MultiDomainDataSource.observe_rewards`, which updates a `Curriculum` and the sampler's weights. The
hook is the switch: without it the mixture stays as configured. Pure: no slime import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import CurriculumConfig

logger = logging.getLogger(__name__)

_EPS = 1e-3  # keeps a pool with p in {0, 1} at a small positive score instead of exactly 0


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Rewards observed for one pool in one rollout."""

    reward_sum: float
    samples: int
    groups: int

    @property
    def mean(self) -> float:
        return self.reward_sum / self.samples if self.samples else 0.0


def reward_stats(groups: Sequence[Sequence[Any]], reward_key: str | None = None) -> dict[str, PoolStats]:
    """Per-pool reward sums of slime sample groups.

    Args:
        groups: Groups of samples (objects with ``reward`` and ``metadata``).
        reward_key: slime's ``--reward-key``: the entry of a dict reward to use.

    Returns:
        Pool (``metadata["source_name"]``) -> stats. Samples without a numeric reward and groups without a
        pool name are skipped (counted in a debug log).
    """
    sums: dict[str, list[float]] = {}
    skipped = 0
    for group in groups:
        if not group:
            continue
        pool = (getattr(group[0], "metadata", None) or {}).get("source_name")
        if not pool:
            skipped += len(group)
            continue
        acc = sums.setdefault(pool, [0.0, 0, 0])
        acc[2] += 1
        for sample in group:
            reward = getattr(sample, "reward", None)
            if isinstance(reward, Mapping) and reward_key is not None:
                reward = reward.get(reward_key)
            if isinstance(reward, bool) or not isinstance(reward, (int, float)):
                skipped += 1
                continue
            acc[0] += float(reward)
            acc[1] += 1
    if skipped:
        logger.debug("curriculum skipped %d samples without a pool name or numeric reward", skipped)
    return {pool: PoolStats(acc[0], int(acc[1]), int(acc[2])) for pool, acc in sums.items()}


class Curriculum:
    """Moving-average pass rate per pool and the weight factors derived from it.

    Args:
        config: Curriculum parameters.
        pools: The pool names.
    """

    def __init__(self, config: CurriculumConfig, pools: Sequence[str]):
        self.config = config
        self.pass_rates: dict[str, float | None] = {name: None for name in pools}
        self.rollouts = 0

    def update(self, stats: Mapping[str, PoolStats]) -> None:
        """Fold one rollout's per-pool stats into the moving averages (unknown pools are ignored)."""
        self.rollouts += 1
        for name, pool_stats in stats.items():
            if name not in self.pass_rates or pool_stats.samples == 0:
                continue
            if pool_stats.groups < self.config.min_groups:
                continue
            old = self.pass_rates[name]
            new = min(1.0, max(0.0, pool_stats.mean))
            self.pass_rates[name] = new if old is None else (1 - self.config.ema) * old + self.config.ema * new

    def factors(self) -> dict[str, float]:
        """Pool -> multiplicative weight factor (1.0 during warm-up and for pools not yet observed)."""
        known = {name: p for name, p in self.pass_rates.items() if p is not None}
        if self.rollouts < self.config.warmup_rollouts or len(known) < 2:
            return {name: 1.0 for name in self.pass_rates}
        scores = {name: self._score(p) + _EPS for name, p in known.items()}
        mean = sum(scores.values()) / len(scores)
        lo, hi = self.config.min_factor, self.config.max_factor
        return {name: min(hi, max(lo, scores[name] / mean)) if name in scores else 1.0 for name in self.pass_rates}

    def _score(self, p: float) -> float:
        if self.config.mode == "learnability":
            return p * (1.0 - p)
        return 1.0 - p

    def state_dict(self) -> dict[str, Any]:
        return {"rollouts": self.rollouts, "pass_rates": dict(self.pass_rates)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rollouts = int(state.get("rollouts", 0))
        saved = state.get("pass_rates", {})
        self.pass_rates = {name: (None if saved.get(name) is None else float(saved[name])) for name in self.pass_rates}


_warned_sources: set[str] = set()


def observe(args: Any, all_groups: list[list[Any]], data_source: Any) -> None:
    """slime ``--rollout-all-samples-process-path`` hook: feed this rollout's rewards to the curriculum.

    slime's ``generate_rollout`` passes the data source's bound ``get_samples`` method here, not the data
    source itself; the object behind a bound method is used.

    Args:
        args: slime's args (``reward_key`` is read; ``processed_group_count`` is incremented, the
            attribute slime's own contract test for this hook checks).
        all_groups: Every generated group of the rollout.
        data_source: slime's data source, or one of its bound methods; must be
            `m2rl_slime.data.MultiDomainDataSource` for the weights to move (anything else is reported once
            at ERROR level and left unchanged).
    """
    args.processed_group_count = getattr(args, "processed_group_count", 0) + len(all_groups)
    source = getattr(data_source, "__self__", data_source)
    update = getattr(source, "observe_rewards", None)
    if update is None:
        kind = type(source).__name__
        if kind not in _warned_sources:
            _warned_sources.add(kind)
            if source is data_source and callable(data_source):
                got = f"a plain callable ({getattr(data_source, '__qualname__', kind)}), not a data source method"
                fix = "a custom --rollout-function-path must pass the data source or its bound get_samples"
            else:
                got = f"data source {kind} (--data-source-path {getattr(args, 'data_source_path', None)})"
                fix = "set --data-source-path m2rl_slime.data.MultiDomainDataSource"
            logger.error(
                "curriculum hook got %s, which cannot be re-weighted; %s, or drop --rollout-all-samples-process-path",
                got,
                fix,
            )
        return
    update(reward_stats(all_groups, getattr(args, "reward_key", None)))
