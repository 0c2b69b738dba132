"""Pins the pure data-source core: exactly n groups of fresh samples, indices, buffer, state, curriculum."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from m2rl_slime.data.config import CurriculumConfig
from m2rl_slime.data.curriculum import PoolStats
from m2rl_slime.data.mixing import MixingSource


def make(prompt, pool, group_index, index):
    return {"prompt": prompt, "pool": pool, "group_index": group_index, "index": index, "metadata": {}}


def _pools():
    return {
        "math": [{"q": f"m{i}"} for i in range(40)],
        "code": [{"q": f"c{i}"} for i in range(10)],
        "agent": [{"q": f"a{i}"} for i in range(2)],
    }


def _source(**kw):
    weights = kw.pop("weights", {"math": 2, "code": 1, "agent": 1})
    return MixingSource(_pools(), weights, seed=7, n_samples_per_prompt=4, make_sample=make, **kw)


def test_exactly_n_groups_of_fresh_samples_with_unique_indices():
    source = _source()
    seen_index, seen_group = set(), set()
    for _ in range(30):
        groups = source.get_samples(8)
        assert len(groups) == 8
        assert Counter(g[0]["pool"] for g in groups) == {"math": 4, "code": 2, "agent": 2}
        for group in groups:
            assert len(group) == 4
            assert len({id(s) for s in group}) == 4  # fresh objects
            assert len({s["group_index"] for s in group}) == 1
            assert len({id(s["prompt"]) for s in group}) == 1
            seen_group.add(group[0]["group_index"])
            seen_index.update(s["index"] for s in group)
    assert len(seen_index) == 30 * 8 * 4 and len(seen_group) == 30 * 8


def test_prompts_are_held_once_not_copied():
    pools = _pools()
    source = MixingSource(pools, {"math": 1, "code": 1, "agent": 1}, 0, 2, make)
    ids = {id(p) for pool in pools.values() for p in pool}
    for _ in range(50):  # many epochs of the 2-prompt pool
        for group in source.get_samples(6):
            assert id(group[0]["prompt"]) in ids
    assert source.pools["agent"] is pools["agent"]


def test_zero_request_and_len():
    source = _source()
    assert source.get_samples(0) == []
    assert len(source) == 52


def test_buffer_groups_come_first_and_keep_their_indices():
    source = _source()
    first = source.get_samples(3)
    source.add_samples(first[:2])
    again = source.get_samples(3)
    assert again[:2] == first[:2]
    assert again[2][0]["index"] == 12  # fresh draws continue the index counter
    source.add_samples([])
    with pytest.raises(ValueError, match="group 0 has 3 samples, expected 4"):
        source.add_samples([first[2][:3]])


def test_custom_buffer_policy_is_used():
    taken = []

    def newest_first(buffer, n):
        out = buffer[-n:][::-1]
        del buffer[-n:]
        taken.append(n)
        return out

    source = _source(take_from_buffer=newest_first)
    groups = source.get_samples(2)
    source.add_samples(groups)
    assert source.get_samples(1) == [groups[1]]
    assert taken == [1]


def test_save_load_resumes_identical_sequence():
    source = _source()
    for _ in range(11):
        source.get_samples(8)
    state = json.loads(json.dumps(source.state_dict()))
    expected = [source.get_samples(8) for _ in range(10)]
    resumed = _source()
    resumed.load_state_dict(state)
    assert [resumed.get_samples(8) for _ in range(10)] == expected


def test_curriculum_reweights_and_resumes_with_its_state():
    cfg = CurriculumConfig(
        mode="learnability", ema=1.0, warmup_rollouts=1, min_groups=1, min_factor=0.1, max_factor=10
    )
    source = _source(weights={"math": 1, "code": 1, "agent": 1}, curriculum=cfg)
    assert Counter(g[0]["pool"] for g in source.get_samples(30)) == {"math": 10, "code": 10, "agent": 10}
    # math solved always (no signal), code half the time (max signal), agent never
    source.observe_rewards(
        {"math": PoolStats(40, 40, 10), "code": PoolStats(20, 40, 10), "agent": PoolStats(0, 40, 10)}
    )
    counts = Counter(g[0]["pool"] for g in source.get_samples(30))
    assert counts["code"] > 20 and counts["math"] <= 2 and counts["agent"] <= 2
    state = json.loads(json.dumps(source.state_dict()))
    expected = [source.get_samples(16) for _ in range(5)]
    resumed = _source(weights={"math": 1, "code": 1, "agent": 1}, curriculum=cfg)
    resumed.load_state_dict(state)
    assert [resumed.get_samples(16) for _ in range(5)] == expected
