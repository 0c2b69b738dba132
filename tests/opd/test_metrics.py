"""rollout_metrics: per-domain OPD figures from the hook's per-sample records (nested lists accepted)."""

from __future__ import annotations

import pytest

from m2rl_slime.opd import rollout_metrics


def test_per_domain_aggregation(kit):
    def sample(info):
        return kit.FakeSample([1, 2], 1, metadata={"opd": info} if info else {})

    samples = [
        sample({"domain": "math", "teacher": "m", "latency_s": 0.2, "attempts": 1, "rollout_reverse_kl": 0.5}),
        [
            sample({"domain": "math", "teacher": "m", "latency_s": 0.4, "attempts": 3, "rollout_reverse_kl": 0.1}),
            sample({"domain": "math", "teacher": "m", "latency_s": 0.6, "attempts": 1, "rollout_reverse_kl": None}),
        ],
        sample({"domain": "agent", "teacher": None}),
        sample(None),
    ]
    out = rollout_metrics(samples)
    assert out["opd/math/samples"] == 3 and out["opd/agent/samples"] == 1
    assert out["opd/math/rollout_reverse_kl"] == pytest.approx(0.3)
    assert out["opd/math/teacher_latency_s"] == pytest.approx(0.4)
    assert out["opd/math/retried_frac"] == pytest.approx(1 / 3)
    assert out["opd/agent/teacher_frac"] == 0.0 and "opd/agent/rollout_reverse_kl" not in out
    assert out["opd/rollout_reverse_kl"] == pytest.approx(0.3)
    assert rollout_metrics([]) == {}
