"""`m2rl_agent` settings: strict parsing, ranges, and the csv_dir requirement."""

from __future__ import annotations

import pytest

from m2rl_slime.agent.config import AgentConfig
from m2rl_slime.agent.episode import episode_env, episode_limits
from m2rl_slime.config import parse_dataclass
from m2rl_slime.errors import ConfigError


def test_defaults_and_parsing(csv_dir):
    cfg = parse_dataclass(AgentConfig, {"csv_dir": csv_dir, "max_turns": 4}, "m2rl_agent")
    assert (cfg.max_turns, cfg.noop_ground_truth, cfg.created_rows) == (4, "require_reads", "ignore_generated_ids")
    assert AgentConfig().max_turns == 6


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"max_turns": 0}, "max_turns must be >= 1"),
        ({"max_tool_output_chars": 0}, "max_tool_output_chars"),
        ({"env_url": "localhost:12000"}, "env_url must start with http"),
        ({"noop_ground_truth": "yes"}, "noop_ground_truth"),
        ({"csv_path": "x"}, "unknown key"),
    ],
)
def test_bad_settings_are_named(mapping, message):
    with pytest.raises(ConfigError, match=message):
        parse_dataclass(AgentConfig, mapping, "m2rl_agent")


def test_missing_csv_dir_is_reported_where_the_database_is_used_not_when_parsing(tmp_path):
    cfg = parse_dataclass(AgentConfig, {"csv_dir": str(tmp_path / "absent")}, "m2rl_agent")  # a launch host
    with pytest.raises(ConfigError, match="m2rl_agent.csv_dir .* is not a directory"):
        cfg.require_csv_dir()


def test_agent_samples_need_csv_dir_even_with_a_remote_environment():
    with pytest.raises(ConfigError, match="m2rl_agent.csv_dir is not set"):
        episode_env(AgentConfig(env_url="http://127.0.0.1:12000"), None)


def test_limits_never_raise_slimes_budget():
    assert episode_limits(AgentConfig(), 8192).max_response_tokens == 8192
    assert episode_limits(AgentConfig(max_response_tokens=1000), 8192).max_response_tokens == 1000
    assert episode_limits(AgentConfig(max_response_tokens=99999), 8192).max_response_tokens == 8192
    assert episode_limits(AgentConfig(), 8192, 16384).max_total_tokens == 16384
