"""Pins the per-domain quotas of the trained batch (`BatchQuota`) and the data source's quota mode.

`simulate_rollout` replays slime's `generate_rollout_async` admission loop (submit
`over_sampling_batch_size` groups while fewer than `rollout_batch_size` are kept or in flight, take finished
groups in time order, drop what the filter rejects, stop at `rollout_batch_size`) with per-domain latencies,
so the skew slime's loop gives and the exact counts the quota filter gives are both checked without slime.
The real loop is driven in tests/contract/test_slime_rollout.py.
"""

from __future__ import annotations

import heapq
from collections import Counter

import pytest

from m2rl_slime.data.metrics import trained_batch_metrics
from m2rl_slime.data.mixing import MixingSource
from m2rl_slime.data.quota import BatchQuota, Decision, Verdict
from m2rl_slime.errors import ConfigError

POOLS = ("math", "code", "science", "if", "agent")
LATENCY = {"math": 50, "code": 50, "science": 0, "if": 0, "agent": 20}  # the slow domains lose without quotas


def make(prompt, pool, group_index, index):
    return {"prompt": prompt, "pool": pool, "group_index": group_index, "index": index, "metadata": {}}


def pool_of(group):
    return group[0]["pool"]


def source(batch_quota=None, sizes=None, **kw):
    sizes = sizes or {name: 50 for name in POOLS}
    pools = {name: [f"{name}{i}" for i in range(n)] for name, n in sizes.items()}
    weights = kw.pop("weights", {name: 1.0 for name in pools})
    return MixingSource(pools, weights, 3, 2, make, batch_quota=batch_quota, pool_of=pool_of, **kw)


def simulate_rollout(src, batch, over, quota=None, reject=lambda group: False):
    """slime's admission loop over `src.get_samples`; returns the kept groups (the trained batch)."""
    pending, clock, remaining, kept = [], 0, 0, []
    while len(kept) < batch:
        while remaining < batch:
            for group in src.get_samples(over):
                heapq.heappush(pending, (clock + LATENCY[pool_of(group)], group[0]["index"], group))
            remaining += over
        clock, _, group = heapq.heappop(pending)
        inner = Verdict(not reject(group), "zero_std")
        keep = inner.keep if quota is None else quota.decide(pool_of(group), inner).keep
        if not keep:
            remaining -= 1
            continue
        kept.append(group)
    return kept


def test_slimes_loop_drops_slow_domains_without_quotas():
    kept = simulate_rollout(source(), batch=10, over=20)
    counts = Counter(pool_of(g) for g in kept)
    assert counts["math"] == counts["code"] == 0 and sum(counts.values()) == 10


def test_quota_filter_gives_exact_counts_every_rollout():
    quota = BatchQuota(10)
    src = source(quota)
    for _ in range(5):
        kept = simulate_rollout(src, batch=10, over=20, quota=quota)
        assert Counter(pool_of(g) for g in kept) == {name: 2 for name in POOLS}
        assert quota.complete and quota.kept == Counter({name: 2 for name in POOLS})
        assert quota.dropped["if"] == quota.dropped["science"] == 2  # the fast domains over-produce


def test_quota_filter_with_a_rejecting_inner_filter_refills_the_open_domain():
    quota = BatchQuota(10)
    src = source(quota)
    seen = Counter()

    def reject(group):  # the first three math groups of the rollout are all-solved (zero std)
        seen[pool_of(group)] += 1
        return pool_of(group) == "math" and seen["math"] <= 3

    kept = simulate_rollout(src, batch=10, over=20, quota=quota, reject=reject)
    assert Counter(pool_of(g) for g in kept) == {name: 2 for name in POOLS}
    assert quota.rejected["math"] == 3 and quota.forced["math"] == 0


def test_refill_draws_only_the_domains_that_are_still_open():
    quota = BatchQuota(10)
    src = source(quota)
    first = src.get_samples(20)
    assert Counter(pool_of(g) for g in first) == {name: 4 for name in POOLS}
    for group in first:  # everything finished; the filter rejected every math group
        quota.decide(pool_of(group), Verdict(pool_of(group) != "math", "zero_std"))
    assert quota.open()["math"] == 2 and quota.kept["math"] == 0
    refill = src.get_samples(20)
    assert Counter(pool_of(g) for g in refill) == {"math": 20}


def test_patience_keeps_a_domain_the_filter_always_rejects():
    quota = BatchQuota(4, patience=1.5)
    quota.start({"math": 0.5, "code": 0.5})
    quota.handed_out("math", 10)
    verdicts = [quota.decide("math", Verdict(False, "zero_std")) for _ in range(5)]
    assert [v.keep for v in verdicts] == [False, False, False, True, True]  # ceil(1.5 * 2) = 3 rejections
    assert verdicts[0] == Decision(False, "math_zero_std") and verdicts[3].forced
    assert quota.decide("math", Verdict(True)) == Decision(False, "quota_full_math")


def test_keep_when_insufficient_is_judged_per_domain():
    quota = BatchQuota(4)
    quota.start({"math": 0.5, "code": 0.5})
    quota.handed_out("math", 3)
    fallback = Verdict(False, "zero_std", keep_when_insufficient=True)
    assert not quota.decide("math", fallback).keep  # two more math groups in flight can still fill 2
    assert quota.decide("math", fallback).keep  # one left in flight: dropping this one would leave it short
    assert quota.decide("math", Verdict(True)).keep and quota.kept["math"] == 2


def test_quotas_carry_the_rounding_and_survive_a_save():
    quota = BatchQuota(4)
    totals = Counter()
    probs = {"a": 0.5, "b": 0.3, "c": 0.2}
    for k in range(1, 11):
        quota.start(probs)
        assert sum(quota.quota.values()) == 4
        totals.update(quota.quota)
        for name, p in probs.items():
            assert abs(totals[name] - 4 * k * p) < 1
        if k == 5:
            other = BatchQuota(4)
            other.load_state_dict(quota.state_dict())
            assert other.needs_start and other.carry == quota.carry
            quota = other


def test_buffered_groups_wait_for_an_open_quota_of_their_domain():
    quota = BatchQuota(4)
    src = source(quota, sizes={"math": 20, "code": 20}, weights={"math": 1, "code": 1})
    first = src.get_samples(8)
    for group in first:  # the batch fills (2 + 2); the other four groups are dropped as quota_full
        quota.decide(pool_of(group), Verdict(True))
    assert quota.complete
    code = [g for g in first if pool_of(g) == "code"]
    math = [g for g in first if pool_of(g) == "math"]
    src.add_samples([code[0], code[1], code[2], math[0]])  # slime's aborted partial groups
    nxt = src.get_samples(4)
    assert nxt[:3] == [code[0], code[1], math[0]]  # oldest first, while the domain's quota is open
    assert pool_of(nxt[3]) == "math" and nxt[3] not in first  # one fresh math group completes the batch
    assert src.buffer == [code[2]]  # code's quota of 2 is covered: the third code group waits


def test_state_dict_round_trips_the_quota_carry():
    quota = BatchQuota(3)
    src = source(quota, sizes={"a": 5, "b": 5, "c": 5}, weights={"a": 1, "b": 1, "c": 2})
    src.get_samples(3)
    state = src.state_dict()
    assert state["batch_quota"]["carry"] == quota.carry and state["batch_quota"]["rollouts"] == 1
    resumed = source(BatchQuota(3), sizes={"a": 5, "b": 5, "c": 5}, weights={"a": 1, "b": 1, "c": 2})
    resumed.load_state_dict(state)
    assert resumed.batch_quota.carry == quota.carry and resumed.batch_quota.needs_start


def test_quota_mode_needs_pool_of_and_a_valid_batch():
    with pytest.raises(ConfigError, match="pool_of"):
        MixingSource({"a": [1]}, {"a": 1}, 0, 1, make, batch_quota=BatchQuota(2))
    with pytest.raises(ConfigError, match="rollout-batch-size"):
        BatchQuota(0)
    with pytest.raises(ConfigError, match="patience"):
        BatchQuota(2, patience=0)


def test_without_shuffle_every_pool_is_read_in_file_order():
    src = source(sizes={"a": 3, "b": 2}, weights={"a": 1, "b": 1}, shuffle=False)
    drawn = [g[0]["prompt"] for _ in range(3) for g in src.get_samples(2)]
    assert drawn == ["a0", "b0", "a1", "b1", "a2", "b0"]
    shuffled = source(sizes={"a": 30, "b": 20}, weights={"a": 1, "b": 1})
    assert [g[0]["prompt"] for g in shuffled.get_samples(10)] != [f"{p}{i}" for i in range(5) for p in "ab"]


def test_trained_batch_metrics_count_groups_samples_and_removed_per_pool():
    class S:
        def __init__(self, pool, group, removed=False):
            self.metadata, self.group_index, self.remove_sample = {"source_name": pool}, group, removed

    samples = [S("math", 0), S("math", 0), S("agent", 1), S("agent", 1, True), S("math", 2), S("math", 2)]
    metrics = trained_batch_metrics([samples[:2], samples[2:]])
    assert metrics["m2rl_data/math/groups"] == 2 and metrics["m2rl_data/math/samples"] == 4
    assert metrics["m2rl_data/agent/removed"] == 1 and metrics["m2rl_data/agent/group_share"] == pytest.approx(1 / 3)
    assert trained_batch_metrics([object()]) == {}
