"""Pins the pure mixing sampler: exact per-batch counts, carried remainders, epochs, determinism, resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from m2rl_slime.data.mixture import MixtureSampler, allocate, mixture_weights, normalise
from m2rl_slime.errors import ConfigError

SIZES = {"math": 500, "code": 120, "science": 60, "if": 30, "agent": 7}


def _counts(pairs):
    return Counter(name for name, _ in pairs)


@pytest.mark.parametrize(
    "weights",
    [
        {"math": 1, "code": 1, "science": 1, "if": 1, "agent": 1},
        {"math": 5, "code": 3, "science": 1, "if": 1, "agent": 0},
        {"math": 0.37, "code": 0.21, "science": 0.2, "if": 0.13, "agent": 0.09},
        mixture_weights("natural", SIZES),
        mixture_weights("temperature", SIZES, temperature=3.0),
    ],
)
@pytest.mark.parametrize("batch", [128, 7, 1])
def test_per_batch_counts_follow_weights_exactly(weights, batch):
    sampler = MixtureSampler(SIZES, weights, seed=3)
    probs = normalise({k: float(weights.get(k, 0)) for k in SIZES})
    total = Counter()
    for k in range(1, 41):
        counts = _counts(sampler.draw(batch))
        assert sum(counts.values()) == batch
        for name, p in probs.items():
            # each batch gets floor or ceil of its quota (plus at most the carried remainder) ...
            assert abs(counts[name] - batch * p) < 2
            if p == 0:
                assert counts[name] == 0
        total += counts
        # ... and cumulatively every pool is within one draw of its exact share
        for name, p in probs.items():
            assert abs(total[name] - k * batch * p) < 1 + 1e-9, (name, total[name], k * batch * p)


def test_uniform_128_over_5_alternates_26_and_25():
    sampler = MixtureSampler(SIZES, mixture_weights("uniform", SIZES), seed=0)
    first = _counts(sampler.draw(128))
    assert sorted(first.values()) == [25, 25, 26, 26, 26]
    second = _counts(sampler.draw(128))
    assert all(first[n] + second[n] in (51, 52) for n in SIZES)


def test_allocate_largest_remainder_and_carry():
    counts, carry = allocate(10, {"a": 0.55, "b": 0.45}, {})
    assert counts == {"a": 6, "b": 4}  # 5.5 vs 4.5: tie on remainder goes to the first
    assert carry == pytest.approx({"a": -0.5, "b": 0.5})
    counts, carry = allocate(10, {"a": 0.55, "b": 0.45}, carry)
    assert counts == {"a": 5, "b": 5}
    assert carry == pytest.approx({"a": 0.0, "b": 0.0})


def test_mixture_weight_modes():
    sizes = {"a": 100, "b": 25}
    assert normalise(mixture_weights("natural", sizes)) == {"a": 0.8, "b": 0.2}
    assert normalise(mixture_weights("uniform", sizes)) == {"a": 0.5, "b": 0.5}
    assert normalise(mixture_weights("temperature", sizes, temperature=2.0)) == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert mixture_weights("weights", sizes, {"a": 1, "b": 3}) == {"a": 1.0, "b": 3.0}
    with pytest.raises(ConfigError, match="no weight for pool"):
        mixture_weights("weights", sizes, {"a": 1})
    with pytest.raises(ConfigError, match="sum to a positive"):
        mixture_weights("weights", sizes, {"a": 0, "b": 0})
    with pytest.raises(ConfigError, match="unknown mixture mode"):
        mixture_weights("balanced", sizes)


def test_deterministic_across_instances_and_seed_dependent():
    a = MixtureSampler(SIZES, SIZES, seed=11)
    b = MixtureSampler(SIZES, SIZES, seed=11)
    c = MixtureSampler(SIZES, SIZES, seed=12)
    seq_a = [a.draw(64) for _ in range(20)]
    assert seq_a == [b.draw(64) for _ in range(20)]
    assert seq_a != [c.draw(64) for _ in range(20)]
    flat = [pair for batch in seq_a[:3] for pair in batch]
    assert [n for n, _ in flat[:64]] != sorted(n for n, _ in flat[:64])  # batch order is shuffled


def test_small_pool_wraps_epochs_with_fresh_permutations():
    sampler = MixtureSampler({"big": 1000, "tiny": 3}, {"big": 1, "tiny": 1}, seed=5)
    tiny = [pos for _ in range(10) for name, pos in sampler.draw(10) if name == "tiny"]
    assert len(tiny) == 50
    epochs = [tiny[i : i + 3] for i in range(0, 48, 3)]
    assert all(sorted(e) == [0, 1, 2] for e in epochs)  # every epoch is a permutation
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled between epochs
    assert sampler.epochs["tiny"] == 16


def test_big_pool_positions_unique_within_an_epoch():
    sampler = MixtureSampler({"a": 300, "b": 300}, {"a": 1, "b": 1}, seed=1)
    drawn = [pair for _ in range(5) for pair in sampler.draw(60)]
    assert len(set(drawn)) == len(drawn) == 300


def test_state_round_trips_through_json_and_resumes_identically():
    sampler = MixtureSampler(SIZES, {"math": 0.3, "code": 0.3, "science": 0.2, "if": 0.1, "agent": 0.1}, seed=9)
    for _ in range(37):
        sampler.draw(50)
    state = json.loads(json.dumps(sampler.state_dict()))
    expected = [sampler.draw(50) for _ in range(30)]
    resumed = MixtureSampler(SIZES, {"math": 1}, seed=0)  # constructor args are overridden by the state
    resumed.load_state_dict(state)
    assert [resumed.draw(50) for _ in range(30)] == expected


def test_load_rejects_changed_pools():
    sampler = MixtureSampler({"a": 10, "b": 5}, {"a": 1, "b": 1}, seed=0)
    state = sampler.state_dict()
    other = MixtureSampler({"a": 10, "b": 6}, {"a": 1, "b": 1}, seed=0)
    with pytest.raises(ConfigError, match="prompt files now give"):
        other.load_state_dict(state)


def test_set_weights_disables_a_pool_immediately():
    sampler = MixtureSampler({"a": 10, "b": 10}, {"a": 1, "b": 1}, seed=0)
    sampler.draw(3)
    sampler.set_weights({"a": 1, "b": 0})
    assert _counts(sampler.draw(5)) == {"a": 5}


def test_bad_construction():
    with pytest.raises(ConfigError, match="empty"):
        MixtureSampler({"a": 0, "b": 3}, {"a": 1, "b": 1}, seed=0)
    with pytest.raises(ConfigError, match="without prompts"):
        MixtureSampler({"a": 3}, {"a": 1, "z": 1}, seed=0)
    with pytest.raises(ConfigError, match="positive"):
        MixtureSampler({"a": 3}, {"a": 0}, seed=0)
