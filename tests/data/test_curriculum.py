"""Pins the curriculum: per-pool reward stats, factors, warm-up, and the slime hook's contract."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from m2rl_slime.data.config import CurriculumConfig
from m2rl_slime.data.curriculum import Curriculum, PoolStats, observe, reward_stats


def _s(pool, reward):
    return SimpleNamespace(metadata={"source_name": pool} if pool else {}, reward=reward)


def test_reward_stats_sums_numeric_rewards_per_pool():
    groups = [
        [_s("math", 1.0), _s("math", 0.0)],
        [_s("code", {"score": 0.5, "x": 1}), _s("code", {"score": 1.0})],
        [_s("math", None), _s("math", True)],  # no reward yet / not a number
        [_s(None, 1.0)],
    ]
    stats = reward_stats(groups, reward_key="score")
    assert stats == {"math": PoolStats(1.0, 2, 2), "code": PoolStats(1.5, 2, 1)}
    assert stats["code"].mean == 0.75


def test_factors_follow_mode_clip_and_warmup():
    cfg = CurriculumConfig(mode="hardness", ema=0.5, warmup_rollouts=2, min_groups=1, min_factor=0.5, max_factor=2.0)
    cur = Curriculum(cfg, ["a", "b", "c"])
    cur.update({"a": PoolStats(9, 10, 5), "b": PoolStats(1, 10, 5)})
    assert cur.factors() == {"a": 1.0, "b": 1.0, "c": 1.0}  # still warming up
    cur.update({"a": PoolStats(9, 10, 5), "b": PoolStats(1, 10, 5)})
    assert cur.pass_rates["a"] == pytest.approx(0.9) and cur.pass_rates["c"] is None
    f = cur.factors()
    assert f["c"] == 1.0
    assert f["b"] == pytest.approx(0.901 / 0.501)  # (1 - 0.1 + eps) / mean score
    assert f["a"] == 0.5  # (0.101 / 0.501) clipped to min_factor


def test_min_groups_ignores_thin_observations():
    cur = Curriculum(CurriculumConfig(min_groups=4), ["a"])
    cur.update({"a": PoolStats(3, 3, 3)})
    assert cur.pass_rates["a"] is None


def test_state_round_trip():
    cur = Curriculum(CurriculumConfig(min_groups=1), ["a", "b"])
    cur.update({"a": PoolStats(1, 2, 1)})
    other = Curriculum(CurriculumConfig(min_groups=1), ["a", "b"])
    other.load_state_dict(cur.state_dict())
    assert other.pass_rates == cur.pass_rates and other.rollouts == 1


def test_observe_feeds_the_data_source_and_counts_groups():
    received = []
    source = SimpleNamespace(observe_rewards=received.append)
    args = SimpleNamespace(reward_key=None)
    observe(args, [[_s("math", 1.0)], [_s("math", 0.0)]], source)
    observe(args, [[_s("math", 1.0)]], source)
    assert received[0] == {"math": PoolStats(1.0, 2, 2)}
    assert args.processed_group_count == 3


def test_observe_with_a_foreign_data_source_reports_and_does_not_crash(caplog, monkeypatch):
    monkeypatch.setattr("m2rl_slime.data.curriculum._warned_sources", set())
    args = SimpleNamespace()
    with caplog.at_level(logging.ERROR, logger="m2rl_slime.data.curriculum"):
        observe(args, [[_s("math", 1.0)]], object())
    assert args.processed_group_count == 1
    assert "data source object (--data-source-path None), which cannot be re-weighted" in caplog.text


def test_observe_unwraps_the_bound_get_samples_slime_passes(caplog):
    """slime's generate_rollout calls the hook with `data_source.get_samples`, not the data source."""
    received = []

    class Source:
        def get_samples(self, n):
            return []

        def observe_rewards(self, stats):
            received.append(stats)

    source = Source()
    with caplog.at_level(logging.ERROR, logger="m2rl_slime.data.curriculum"):
        observe(SimpleNamespace(reward_key=None), [[_s("math", 1.0), _s("math", 0.0)]], source.get_samples)
    assert received == [{"math": PoolStats(1.0, 2, 1)}]
    assert not caplog.text


def test_observe_names_what_it_got_instead_of_a_data_source(caplog, monkeypatch):
    monkeypatch.setattr("m2rl_slime.data.curriculum._warned_sources", set())

    class RolloutDataSourceWithBuffer:
        def get_samples(self, n):
            return []

    args = SimpleNamespace(data_source_path="slime.rollout.data_source.RolloutDataSourceWithBuffer")
    with caplog.at_level(logging.ERROR, logger="m2rl_slime.data.curriculum"):
        observe(args, [[_s("math", 1.0)]], RolloutDataSourceWithBuffer().get_samples)
        observe(args, [[_s("math", 1.0)]], lambda n: [])
    assert "got data source RolloutDataSourceWithBuffer (--data-source-path slime.rollout" in caplog.text
    assert "got a plain callable" in caplog.text and "must pass the data source" in caplog.text
