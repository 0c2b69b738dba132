"""Pure core of `MultiDomainDataSource`: prompt pools + mixture sampler -> groups of fresh samples.

Generic over the prompt type `P` and the sample type `S`: the slime glue injects a factory that builds a
fresh `slime.utils.types.Sample` from a prompt sample, and tests inject plain dicts. The prompts are
held once (the pools are never copied); a group is `n_samples_per_prompt` factory calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ..errors import ConfigError
from .config import CurriculumConfig
from .curriculum import Curriculum, PoolStats
from .mixture import MixtureSampler, allocate, normalise
from .quota import BatchQuota

logger = logging.getLogger(__name__)

P = TypeVar("P")
S = TypeVar("S")

SampleFactory = Callable[[P, str, int, int], S]
"""``make(prompt, pool, group_index, index) -> sample``; must return a new object each call."""

BufferTake = Callable[[list[list[S]], int], list[list[S]]]
"""``take(buffer, n) -> groups``: removes and returns at most `n` groups from `buffer` (slime's buffer filter)."""


def pop_first(buffer: list[list[Any]], n: int) -> list[list[Any]]:
    """Default buffer policy: the oldest `n` groups."""
    taken = buffer[:n]
    del buffer[:n]
    return taken


class MixingSource(Generic[P, S]):
    """Exactly-`n`-groups data source over several prompt pools.

    Args:
        pools: Pool name -> prompts (held by reference, never copied).
        weights: Pool name -> base weight.
        seed: Sampler seed.
        n_samples_per_prompt: Group size.
        make_sample: Factory of fresh samples.
        curriculum: Curriculum parameters (used only when `observe_rewards` is called).
        take_from_buffer: Buffer policy (default: oldest first; not used with `batch_quota`).
        shuffle: Shuffle pools per epoch and pool order per batch (slime's ``--rollout-shuffle``).
        batch_quota: Per-domain quotas of each trained batch (the quota filter's state). With it, each
            `get_samples` call draws what the current rollout's batch still lacks (see `_get_by_quota`).
        pool_of: Pool name of a group handed back through `add_samples` (required with `batch_quota`).
    """

    def __init__(
        self,
        pools: Mapping[str, Sequence[P]],
        weights: Mapping[str, float],
        seed: int,
        n_samples_per_prompt: int,
        make_sample: SampleFactory,
        *,
        curriculum: CurriculumConfig | None = None,
        take_from_buffer: BufferTake | None = None,
        shuffle: bool = True,
        batch_quota: BatchQuota | None = None,
        pool_of: Callable[[list[S]], str] | None = None,
    ):
        if n_samples_per_prompt < 1:
            raise ConfigError(f"n_samples_per_prompt must be >= 1, got {n_samples_per_prompt}")
        if batch_quota is not None and pool_of is None:
            raise ConfigError("per-domain batch quotas need pool_of to place buffered groups")
        self.pools = dict(pools)
        self.base_weights = dict(weights)
        self.n_samples_per_prompt = n_samples_per_prompt
        self.make_sample = make_sample
        self.take_from_buffer = take_from_buffer or pop_first
        sizes = {name: len(p) for name, p in self.pools.items()}
        self.sampler = MixtureSampler(sizes, self.base_weights, seed, shuffle=shuffle)
        self.batch_quota = batch_quota
        self.pool_of = pool_of
        self.curriculum = Curriculum(curriculum or CurriculumConfig(), list(self.pools))
        self.buffer: list[list[S]] = []
        self.group_index = 0
        self.sample_index = 0

    def __len__(self) -> int:
        return sum(len(p) for p in self.pools.values())

    def get_samples(self, num_samples: int) -> list[list[S]]:
        """Exactly `num_samples` groups: buffered groups first, then fresh groups drawn by the mixture."""
        if self.batch_quota is not None:
            return self._get_by_quota(num_samples)
        groups = self.take_from_buffer(self.buffer, num_samples) if self.buffer and num_samples > 0 else []
        if len(groups) > num_samples:
            raise ValueError(f"buffer filter returned {len(groups)} groups for a request of {num_samples}")
        groups.extend(self._fresh(self.sampler.draw(num_samples - len(groups))))
        return groups

    def _fresh(self, draws: list[tuple[str, int]]) -> list[list[S]]:
        nsp = self.n_samples_per_prompt
        make = self.make_sample
        groups = []
        for name, position in draws:
            prompt = self.pools[name][position]
            first = self.sample_index
            groups.append([make(prompt, name, self.group_index, first + k) for k in range(nsp)])
            self.group_index += 1
            self.sample_index = first + nsp
        return groups

    def _get_by_quota(self, num_samples: int) -> list[list[S]]:
        """Quota mode: the first call of a rollout opens its batch; every call covers what the batch lacks.

        Buffered groups (slime's aborted partial rollouts) come first, oldest first, but only for domains
        whose quota is still open; the others wait. Fresh groups are then split over the domains in
        proportion to their open quota (the groups still needed beyond those kept or in flight), or, when
        nothing is open, in proportion to the mixture.
        """
        quota = self.batch_quota
        if quota.needs_start:
            quota.start(self.sampler.probs)
        if num_samples <= 0:
            return []
        open_ = quota.open()
        groups: list[list[S]] = []
        waiting: list[list[S]] = []
        for group in self.buffer:
            pool = self.pool_of(group)
            if len(groups) < num_samples and open_.get(pool, 0) > 0:
                open_[pool] -= 1
                quota.handed_out(pool)
                groups.append(group)
            else:
                waiting.append(group)
        self.buffer[:] = waiting
        need = {name: max(0, n) for name, n in open_.items()}
        probs = normalise(need) if sum(need.values()) > 0 else self.sampler.probs
        counts, _ = allocate(num_samples - len(groups), probs, {})
        for name, count in counts.items():
            quota.handed_out(name, count)
        groups.extend(self._fresh(self.sampler.draw_counts(counts)))
        return groups

    def add_samples(self, groups: list[list[S]]) -> None:
        """Queue groups (e.g. slime's aborted partial rollouts) to be returned first by `get_samples`."""
        if not groups:
            return
        if not isinstance(groups, list):
            raise ValueError(f"add_samples expects a list of groups, got {type(groups).__name__}")
        for i, group in enumerate(groups):
            if not isinstance(group, list) or len(group) != self.n_samples_per_prompt:
                size = len(group) if isinstance(group, list) else type(group).__name__
                raise ValueError(f"add_samples: group {i} has {size} samples, expected {self.n_samples_per_prompt}")
        self.buffer.extend(groups)

    def effective_weights(self) -> dict[str, float]:
        """Base weights times the curriculum factors (all 1.0 until the curriculum has observed enough)."""
        factors = self.curriculum.factors()
        return {name: self.base_weights.get(name, 0.0) * factors[name] for name in self.pools}

    def observe_rewards(self, stats: Mapping[str, PoolStats]) -> None:
        """Curriculum input: fold one rollout's per-pool reward stats in and re-weight the mixture."""
        self.curriculum.update(stats)
        weights = self.effective_weights()
        self.sampler.set_weights(weights)
        logger.info(
            "curriculum: pass rates %s -> mixture %s",
            {k: None if v is None else round(v, 4) for k, v in self.curriculum.pass_rates.items()},
            {k: round(v, 4) for k, v in normalise(weights).items()},
        )

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (the buffer is not saved, as in slime)."""
        return {
            "sampler": self.sampler.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "base_weights": dict(self.base_weights),
            "group_index": self.group_index,
            "sample_index": self.sample_index,
            **({"batch_quota": self.batch_quota.state_dict()} if self.batch_quota is not None else {}),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output; the configured base weights win if they changed since the save."""
        self.sampler.load_state_dict(state["sampler"])
        self.curriculum.load_state_dict(state.get("curriculum", {}))
        self.group_index = int(state["group_index"])
        self.sample_index = int(state["sample_index"])
        if self.batch_quota is not None:
            self.batch_quota.load_state_dict(state.get("batch_quota", {}))
        saved_base = {k: float(v) for k, v in state.get("base_weights", {}).items()}
        if saved_base and normalise(saved_base) != normalise(self.base_weights):
            logger.warning(
                "mixture weights changed since the save (%s -> %s); continuing the cursors with the new weights",
                saved_base,
                self.base_weights,
            )
        self.sampler.set_weights(self.effective_weights())
