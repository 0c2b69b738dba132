"""Pure domain mixing: mixture weights, exact per-batch quotas and per-domain shuffled cursors.

No slime, no I/O. `MixtureSampler.draw(n)` returns ``n`` (pool, position) pairs whose pool counts follow
the weights exactly per batch: largest-remainder rounding of ``n * p + carry``, the rounding remainder
carried to the next batch, so after k batches every pool has had ``k * n * p`` draws to within one.
The pools appear in a shuffled order, and each pool walks its own permutation, reshuffled every epoch;
with ``shuffle=False`` (slime's ``--rollout-shuffle`` unset) every pool is read in file order and a
batch lists its pools in their configured order.

Randomness is derived, never stored: the permutation of a pool's epoch comes from
``(seed, pool, epoch)`` and the batch order from ``(seed, batch counter)``, so the whole state is a few
integers and floats (`state_dict`) and a resumed sampler continues the identical sequence.
"""

from __future__ import annotations

import logging
import math
import random
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError

logger = logging.getLogger(__name__)

STATE_VERSION = 1


def mixture_weights(
    mode: str, sizes: Mapping[str, int], weights: Mapping[str, float] | None = None, temperature: float = 1.0
) -> dict[str, float]:
    """Unnormalised weight of every pool for a mixture mode.

    Args:
        mode: ``natural`` (pool size), ``uniform``, ``weights`` (`weights` as given) or ``temperature``
            (size ** (1 / temperature)).
        sizes: Pool -> number of prompts.
        weights: Explicit weights for ``weights`` mode.
        temperature: Temperature for ``temperature`` mode.

    Raises:
        ConfigError: unknown mode, missing weights, or weights that do not sum to a positive number.
    """
    if mode == "natural":
        out = {name: float(size) for name, size in sizes.items()}
    elif mode == "uniform":
        out = {name: 1.0 for name in sizes}
    elif mode == "temperature":
        out = {name: float(size) ** (1.0 / temperature) for name, size in sizes.items()}
    elif mode == "weights":
        weights = weights or {}
        missing = sorted(set(sizes) - set(weights))
        if missing:
            raise ConfigError(f"weights: no weight for pool(s) {', '.join(missing)}")
        out = {name: float(weights[name]) for name in sizes}
    else:
        raise ConfigError(f"unknown mixture mode {mode!r}; known: natural, uniform, weights, temperature")
    if not all(math.isfinite(w) and w >= 0 for w in out.values()) or sum(out.values()) <= 0:
        raise ConfigError(f"mixture weights must be finite, >= 0 and sum to a positive number, got {out}")
    return out


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum to one (raises ConfigError when they cannot be)."""
    total = sum(weights.values())
    if not (math.isfinite(total) and total > 0) or any(w < 0 for w in weights.values()):
        raise ConfigError(f"weights must be >= 0 and sum to a positive number, got {dict(weights)}")
    return {name: w / total for name, w in weights.items()}


def allocate(
    n: int, probs: Mapping[str, float], carry: Mapping[str, float]
) -> tuple[dict[str, int], dict[str, float]]:
    """Split `n` draws over pools by largest remainder, carrying the rounding error.

    Args:
        n: Draws in this batch.
        probs: Pool -> probability (sums to one); pools with 0 never get a draw.
        carry: Pool -> rounding remainder from earlier batches (in (-1, 1); missing = 0).

    Returns:
        (counts summing to `n`, the carry for the next batch). Ties go to the pool listed first.
    """
    active = [name for name, p in probs.items() if p > 0]
    quota = {name: n * probs[name] + carry.get(name, 0.0) for name in active}
    counts = {name: 0 for name in probs}
    for name in active:
        counts[name] = max(0, math.floor(quota[name]))
    by_remainder = sorted(active, key=lambda name: quota[name] - counts[name], reverse=True)
    missing = n - sum(counts.values())
    for i in range(max(0, missing)):
        counts[by_remainder[i % len(by_remainder)]] += 1
    for _ in range(max(0, -missing)):  # only reachable through float drift; take from the smallest remainders
        name = [m for m in reversed(by_remainder) if counts[m] > 0][0]
        counts[name] -= 1
    new_carry = {name: quota[name] - counts[name] for name in active}
    drift = sum(new_carry.values()) / len(active) if active else 0.0
    return counts, {name: (new_carry[name] - drift if name in new_carry else 0.0) for name in probs}


def _stable_key(*parts: object) -> list[int]:
    """Entropy words for numpy's SeedSequence from parts that may be negative ints or strings."""
    words: list[int] = []
    for part in parts:
        if isinstance(part, str):
            words.append(zlib.crc32(part.encode("utf-8")))
        else:
            words.append(int(part) & 0xFFFFFFFFFFFFFFFF)
    return words


class MixtureSampler:
    """Deterministic, resumable (pool, position) stream with exact per-batch pool counts.

    Args:
        sizes: Pool -> number of prompts (every pool must be non-empty).
        weights: Pool -> non-negative weight (missing pools get 0); normalised internally.
        seed: Seed of every permutation and batch order.
        shuffle: Shuffle each pool per epoch and the pool order within a batch (slime's
            ``--rollout-shuffle``); False reads every pool in file order.

    Example:
        >>> s = MixtureSampler({"math": 3, "code": 1}, {"math": 1, "code": 1}, seed=0)
        >>> sorted(name for name, _ in s.draw(4))
        ['code', 'code', 'math', 'math']
    """

    def __init__(self, sizes: Mapping[str, int], weights: Mapping[str, float], seed: int, *, shuffle: bool = True):
        if not sizes:
            raise ConfigError("the mixture has no prompt pools")
        empty = sorted(name for name, size in sizes.items() if size <= 0)
        if empty:
            raise ConfigError(f"prompt pool(s) {', '.join(empty)} are empty")
        unknown = sorted(set(weights) - set(sizes))
        if unknown:
            raise ConfigError(f"weights name pool(s) without prompts: {', '.join(unknown)}")
        self.sizes = dict(sizes)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.batch = 0
        self.epochs = {name: 0 for name in self.sizes}
        self.positions = {name: 0 for name in self.sizes}
        self.carry = {name: 0.0 for name in self.sizes}
        self.probs: dict[str, float] = {}
        self._perms: dict[str, tuple[int, np.ndarray]] = {}
        self.set_weights(weights)
        self._prime()

    def _prime(self) -> None:
        """Build every pool's current permutation now, so memory stays flat from the first draw on."""
        for name in self.sizes:
            self._permutation(name)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Change the mixture from the next batch on; carries of disabled pools are dropped."""
        probs = normalise({name: float(weights.get(name, 0.0)) for name in self.sizes})
        if probs == self.probs:
            return  # unchanged: keep the carry bit-identical (a resumed run must replay the same sequence)
        self.probs = probs
        active = [name for name, p in self.probs.items() if p > 0]
        for name in self.sizes:
            if self.probs[name] == 0:
                self.carry[name] = 0.0
        drift = sum(self.carry[name] for name in active) / len(active)
        for name in active:
            self.carry[name] -= drift

    def draw(self, n: int) -> list[tuple[str, int]]:
        """The next `n` (pool, position) pairs; advances the state by one batch."""
        if n < 0:
            raise ValueError(f"cannot draw a negative number of prompts ({n})")
        if n == 0:
            return []
        counts, self.carry = allocate(n, self.probs, self.carry)
        return self.draw_counts(counts)

    def draw_counts(self, counts: Mapping[str, int]) -> list[tuple[str, int]]:
        """Exactly ``counts[pool]`` next positions of each pool, as one batch (the carry is not touched).

        Raises:
            ValueError: a count is negative or names an unknown pool.
        """
        unknown = sorted(set(counts) - set(self.sizes))
        if unknown or any(k < 0 for k in counts.values()):
            raise ValueError(f"cannot draw counts {dict(counts)} from pools {sorted(self.sizes)}")
        names = [name for name in self.sizes for _ in range(counts.get(name, 0))]
        if not names:
            return []
        if self.shuffle:
            random.Random(f"m2rl-order/{self.seed}/{self.batch}").shuffle(names)
        self.batch += 1
        return [(name, self._next(name)) for name in names]

    def _permutation(self, name: str) -> np.ndarray:
        epoch = self.epochs[name]
        cached = self._perms.get(name)
        if cached is None or cached[0] != epoch:
            dtype = np.int32 if self.sizes[name] < 2**31 else np.int64
            if self.shuffle:
                rng = np.random.default_rng(np.random.SeedSequence(_stable_key(self.seed, name, epoch)))
                cached = (epoch, rng.permutation(self.sizes[name]).astype(dtype))
            else:
                cached = (epoch, np.arange(self.sizes[name], dtype=dtype))
            self._perms[name] = cached
        return cached[1]

    def _next(self, name: str) -> int:
        if self.positions[name] >= self.sizes[name]:
            self.epochs[name] += 1
            self.positions[name] = 0
        position = int(self._permutation(name)[self.positions[name]])
        self.positions[name] += 1
        return position

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (floats round-trip exactly through JSON)."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "batch": self.batch,
            "pools": {
                name: {"size": self.sizes[name], "epoch": self.epochs[name], "position": self.positions[name]}
                for name in self.sizes
            },
            "carry": dict(self.carry),
            "probs": dict(self.probs),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output.

        Raises:
            ConfigError: the state is from another version, or its pools or pool sizes differ from this
                sampler's (the prompt files changed, so the sequence could not continue identically).
        """
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"data source state version {state.get('version')!r} is not {STATE_VERSION}")
        pools = state["pools"]
        saved = {name: int(p["size"]) for name, p in pools.items()}
        if saved != self.sizes:
            raise ConfigError(
                f"saved data source state has pools {saved} but the prompt files now give {self.sizes}; "
                "restore the original prompt files or resume from a fresh save dir"
            )
        if bool(state.get("shuffle", True)) != self.shuffle:
            logger.warning(
                "--rollout-shuffle changed since the save (%s -> %s): the pools' cursors continue in the new order",
                bool(state.get("shuffle", True)),
                self.shuffle,
            )
        self.seed = int(state["seed"])
        self.batch = int(state["batch"])
        self.epochs = {name: int(p["epoch"]) for name, p in pools.items()}
        self.positions = {name: int(p["position"]) for name, p in pools.items()}
        self.carry = {name: float(state["carry"].get(name, 0.0)) for name in self.sizes}
        self.probs = {name: float(state["probs"].get(name, 0.0)) for name in self.sizes}
        self._perms.clear()
        self._prime()
