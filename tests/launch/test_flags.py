"""Pins the flag table and value rendering: unknown flags (with suggestions), switch/value/append shapes,
int/float/choices checks."""

from __future__ import annotations

import json

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.launch.flags import TABLE_PATH, slime_flags, to_tokens


def test_table_is_stamped_with_the_checked_slime_and_megatron_commits():
    data = json.loads(TABLE_PATH.read_text())
    assert data["slime_commit"].startswith("624b824")
    assert data["megatron_commit"].startswith("1dcf0da")
    table = slime_flags()
    for flag in (
        "--lr",
        "--use-tis",
        "--rollout-sample-hook-path",
        "--sglang-mem-fraction-static",
        "--use-opd",
        "--custom-config-path",
        "--eval-config",
        "--debug-train-only",
        "--rollout-stop-token-ids",
    ):
        assert flag in table.flags, flag
    assert "--rollout-stop-token-idz" not in table.flags
    assert {"name", "path", "metadata_overrides", "n_samples_per_eval_prompt"} <= table.eval_dataset_keys


def test_switches():
    assert to_tokens("use-tis", True, "w") == ["--use-tis"]
    assert to_tokens("use-tis", False, "w") == []
    with pytest.raises(ConfigError, match="--use-tis is a switch"):
        to_tokens("use-tis", "yes", "w")


def test_values_and_types():
    assert to_tokens("lr", "2e-6", "w") == ["--lr", "2e-6"]
    assert to_tokens("num-rollout", 400, "w") == ["--num-rollout", "400"]
    with pytest.raises(ConfigError, match=r"r\.yaml: slime\.rollout\.num-rollout: '4x' is not a valid int"):
        to_tokens("num-rollout", "4x", "r.yaml: slime.rollout.num-rollout")
    with pytest.raises(ConfigError, match="expected a single value"):
        to_tokens("lr", [1, 2], "w")
    with pytest.raises(ConfigError, match="expected a single value"):
        to_tokens("lr", True, "w")


def test_choices():
    assert to_tokens("opd-type", "sglang", "w") == ["--opd-type", "sglang"]
    with pytest.raises(ConfigError, match="'sglng' is not one of sglang, megatron"):
        to_tokens("opd-type", "sglng", "w")


def test_multi_value_and_append_flags():
    assert to_tokens("rollout-stop-token-ids", [151645, 151643], "w") == [
        "--rollout-stop-token-ids",
        "151645",
        "151643",
    ]
    assert to_tokens("rollout-stop-token-ids", 151645, "w") == ["--rollout-stop-token-ids", "151645"]
    with pytest.raises(ConfigError, match="needs at least one value"):
        to_tokens("rollout-stop-token-ids", [], "w")
    assert to_tokens("rollout-sample-hook-path", ["a.b", "c.d"], "w") == [
        "--rollout-sample-hook-path", "a.b", "--rollout-sample-hook-path", "c.d"]  # fmt: skip


def test_unknown_flag_names_where_and_suggests():
    with pytest.raises(ConfigError) as info:
        to_tokens("num-rolout", 400, "recipes/rl_math.yaml: slime.rollout.num-rolout")
    message = str(info.value)
    assert message.startswith("recipes/rl_math.yaml: slime.rollout.num-rolout: --num-rolout is not a flag of slime")
    assert "silently ignore" in message and "did you mean --num-rollout" in message
