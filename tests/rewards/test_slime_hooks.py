"""The `--custom-rm-path` hook with slime-shaped samples (the real slime Sample is covered in tests/contract/)."""

import asyncio
import enum
from argparse import Namespace
from dataclasses import dataclass, field

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.rewards import reward
from m2rl_slime.rewards.metrics import domain_metrics, log_eval, log_rollout


class Status(enum.Enum):
    COMPLETED = "completed"
    TRUNCATED = "truncated"


@dataclass
class FakeSample:
    response: str
    label: object = None
    metadata: object = field(default_factory=dict)
    prompt: object = ""
    index: int = 0
    response_length: int = 10
    status: Status = Status.COMPLETED


def args(**plugin):
    return Namespace(m2rl_reward={"workers": 2, **plugin}, reward_key=None)


def run(coro):
    return asyncio.run(coro)


def test_single_sample_returns_a_float_and_records_the_verdict():
    sample = FakeSample("<think>2+2</think>Answer: 4", "4", {"domain": "math"})
    original = sample.response
    value = run(reward(args(), sample))
    assert value == 1.0 and isinstance(value, float)
    assert sample.response == original  # never mutated (M2RL's reward rewrote it)
    record = sample.metadata["m2rl_reward"]
    assert record["domain"] == "math" and record["reason"] == "ok" and record["details"]["extracted"] == "4"


def test_list_of_samples_returns_a_list_in_order():
    samples = [
        FakeSample("</think>Answer: 4", "4", {"rm_type": "deepscaler"}),
        FakeSample("</think>\\boxed{C}", "B", {"rm_type": "gpqa", "valid_letters": "ABCD"}),
        FakeSample("no think", "4", {"domain": "math"}),
    ]
    assert run(reward(args(), samples)) == [1.0, 0.0, 0.0]
    assert [s.metadata["m2rl_reward"]["reason"] for s in samples] == ["ok", "wrong", "no_think_close"]


def test_reward_key_returns_a_dict():
    value = run(
        reward(
            Namespace(m2rl_reward={"workers": 2}, reward_key="score"),
            FakeSample("</think>Answer: 4", "4", {"domain": "math"}),
        )
    )
    assert value == {"score": 1.0, "reason": "ok"}


def test_missing_domain_fails_loudly_naming_the_sample_and_keys():
    samples = [
        FakeSample("</think>Answer: 4", "4", {"domain": "math"}, index=0),
        FakeSample("</think>Answer: 4", "4", {"source": "x", "id": 3}, index=17),
    ]
    with pytest.raises(ConfigError, match=r"sample 1 \(index 17\).*\['id', 'source'\]"):
        run(reward(args(), samples))


def test_unknown_domain_fails_loudly():
    with pytest.raises(ConfigError, match="unknown reward domain 'poetry'"):
        run(reward(args(), FakeSample("x", "y", {"domain": "poetry"})))


def test_string_metadata_is_explained():
    with pytest.raises(ConfigError, match="JSON object"):
        run(reward(args(), FakeSample("x", "y", '{"domain": "math"}')))


def test_default_domain_for_single_domain_runs():
    assert run(reward(args(default_domain="math"), FakeSample("</think>Answer: 4", "4", {}))) == 1.0


def test_science_letters_are_inferred_from_the_prompt():
    prompt = [{"role": "user", "content": "Pick one.\nA) x\nB) y\nC) z"}]
    sample = FakeSample("</think>\\boxed{C}", "C", {"domain": "science"}, prompt=prompt)
    assert run(reward(args(), sample)) == 1.0
    assert sample.metadata["m2rl_reward"]["details"]["letters_from"] == "prompt"


def test_bad_plugin_settings_fail_before_scoring():
    with pytest.raises(ConfigError, match="unknown key"):
        run(reward(Namespace(m2rl_reward={"nonsense": 1}, reward_key=None), FakeSample("x", "1", {"domain": "math"})))


def test_rollout_metrics_are_per_domain_and_added_to_slimes_dict():
    samples = [
        FakeSample("</think>Answer: 4", "4", {"domain": "math"}, response_length=100),
        FakeSample("</think>Answer: 5", "4", {"domain": "math"}, response_length=300, status=Status.TRUNCATED),
        FakeSample("</think>\\boxed{B}", "B", {"domain": "science", "valid_letters": "AB"}),
    ]
    run(reward(args(), samples))
    extra = {"slime/own": 1.0}
    assert log_rollout(3, args(), samples, extra, 1.0) is False  # slime still logs its own metrics
    assert extra["slime/own"] == 1.0
    assert extra["rollout/m2rl/math/reward_mean"] == 0.5
    assert extra["rollout/m2rl/math/reason/wrong"] == 0.5
    assert extra["rollout/m2rl/math/response_len_mean"] == 200
    assert extra["rollout/m2rl/math/truncated_ratio"] == 0.5
    assert extra["rollout/m2rl/science/count"] == 1


def test_eval_metrics_per_dataset():
    samples = [FakeSample("</think>Answer: 4", "4", {"rm_type": "deepscaler"})]
    run(reward(args(), samples))
    extra = {}
    assert log_eval(0, args(), {"aime": {"rewards": [1.0], "samples": samples}}, extra) is False
    assert extra["eval/aime/m2rl/math/reward_mean"] == 1.0


def test_unscored_samples_are_reported_not_dropped():
    metrics = domain_metrics([FakeSample("x")], "p/")
    assert metrics["p/unscored/count"] == 1 and metrics["p/unscored/reason/unscored"] == 1


def test_opd_records_are_merged_into_rollout_metrics():
    sample = FakeSample("</think>Answer: 4", "4", {"domain": "math"})
    run(reward(args(), [sample]))
    sample.metadata["opd"] = {
        "domain": "math",
        "teacher": "http://t",
        "rollout_reverse_kl": 0.25,
        "latency_s": 0.1,
        "attempts": 1,
    }
    extra = {}
    log_rollout(0, args(), [sample], extra, 1.0)
    assert extra["rollout/opd/math/rollout_reverse_kl"] == 0.25
    assert extra["rollout/m2rl/math/reward_mean"] == 1.0


def test_an_aborted_sample_is_never_graded_even_under_group_rm():
    """slime's --group-rm scores the whole group, aborted agent episodes included: those stay 0 / aborted."""
    import asyncio
    import enum
    from types import SimpleNamespace

    from m2rl_slime.rewards.slime_hooks import reward

    class Status(enum.Enum):
        COMPLETED = "completed"
        ABORTED = "aborted"

    args = SimpleNamespace(m2rl_reward={"require_thinking": False, "workers": 1}, reward_key=None)
    good = SimpleNamespace(metadata={"domain": "math"}, response="Answer: 4", label="4", status=Status.COMPLETED)
    aborted = SimpleNamespace(metadata={"domain": "math"}, response="Answer: 4", label="4", status=Status.ABORTED)
    assert asyncio.run(reward(args, [good, aborted])) == [1.0, 0.0]
    assert aborted.metadata["m2rl_reward"]["reason"] == "aborted"
    assert good.metadata["m2rl_reward"]["reason"] == "ok"
