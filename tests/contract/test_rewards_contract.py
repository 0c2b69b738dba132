"""Pins `m2rl_slime.rewards.reward` against a real slime: its own `async_rm` / `batched_async_rm` call sites
with real `Sample` objects, single and group RM, training and eval-style metadata, and the metrics hook
through slime's `log_rollout_data`.

Skipped (with the reason) when slime is not importable, e.g. in CI.
"""

from __future__ import annotations

import asyncio
from argparse import Namespace

import pytest

pytestmark = pytest.mark.contract

try:
    from slime.rollout.rm_hub import async_rm, batched_async_rm
    from slime.utils.types import Sample
except Exception as exc:  # ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

from m2rl_slime.errors import ConfigError

HOOK = "m2rl_slime.rewards.reward"


def make_args(**overrides) -> Namespace:
    base = dict(
        custom_rm_path=HOOK,
        rm_type=None,
        reward_key=None,
        group_rm=False,
        m2rl_reward={"workers": 2, "deadline_s": 5.0},
    )
    base.update(overrides)
    return Namespace(**base)


def make_sample(response: str, label: str, metadata: dict, index: int = 0) -> Sample:
    return Sample(
        index=index, prompt="q", response=response, label=label, metadata=metadata, status=Sample.Status.COMPLETED
    )


def test_async_rm_calls_our_hook_with_a_real_sample():
    sample = make_sample("<think>x</think>Answer: 12", "12", {"domain": "math"})
    reward = asyncio.run(async_rm(make_args(), sample))
    assert reward == 1.0
    assert sample.metadata["m2rl_reward"]["reason"] == "ok"


def test_batched_async_rm_passes_the_list_to_our_hook():
    samples = [
        make_sample("</think>Answer: 12", "12", {"rm_type": "deepscaler"}, 0),
        make_sample("</think>\\boxed{A}", "B", {"rm_type": "gpqa", "valid_letters": "ABCD"}, 1),
    ]
    rewards = asyncio.run(batched_async_rm(make_args(group_rm=True), samples))
    assert rewards == [1.0, 0.0]


def test_eval_metadata_injected_by_eval_config_routes_by_rm_type():
    sample = make_sample("</think>Answer: \\boxed{204}", "204", {"rm_type": "deepscaler"})
    assert asyncio.run(async_rm(make_args(), sample)) == 1.0


def test_reward_key_dict_works_with_get_reward_value():
    args = make_args(reward_key="score")
    sample = make_sample("</think>Answer: 3", "3", {"domain": "math"})
    sample.reward = asyncio.run(async_rm(args, sample))
    assert sample.get_reward_value(args) == 1.0


def test_missing_domain_stops_the_rollout():
    with pytest.raises(ConfigError, match="no domain"):
        asyncio.run(async_rm(make_args(), make_sample("x", "1", {})))


def test_metrics_hook_through_slimes_logger(monkeypatch):
    from slime.observability import rollout_metrics

    samples = [make_sample("</think>Answer: 1", "1", {"domain": "math"}, i) for i in range(2)]
    for s in samples:
        s.reward = asyncio.run(async_rm(make_args(), s))
        s.response_length = 5
    logged = {}
    monkeypatch.setattr(rollout_metrics.logging_utils, "log", lambda args, d, step_key: logged.update(d))
    args = make_args(
        custom_rollout_log_function_path="m2rl_slime.rewards.metrics.log_rollout",
        load_debug_rollout_data=None,
        log_reward_category=None,
        n_samples_per_prompt=2,
        rollout_num_gpus=None,
        wandb_always_use_train_step=False,
        advantage_estimator="grpo",
        use_wandb=False,
        use_tensorboard=False,
    )
    rollout_metrics.log_rollout_data(0, args, samples, {}, 1.0)
    assert logged["rollout/m2rl/math/reward_mean"] == 1.0
