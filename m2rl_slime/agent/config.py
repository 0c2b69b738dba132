"""`m2rl_agent` plugin settings: where the workplace database lives and how agent episodes are bounded.

They reach slime through the `--custom-config-path` YAML (top-level key `m2rl_agent`) and are parsed once
with `m2rl_slime.config.parse_dataclass`. The same frozen (picklable) object is handed to the agent
verifier in the reward worker pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError

CSV_DIR_KEY = "m2rl_agent.csv_dir"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Settings of the workplace-assistant environment, its verifier and the multi-turn rollout.

    Attributes:
        csv_dir: Directory of the workplace tables: NeMo-Gym's `csv_data` (with `processed/` and `raw/`) or
            its `csv_data/processed` directly. Required as soon as an agent sample is generated or scored.
        max_turns: Model turns per episode (the recipe's limit; NeMo-Gym uses 6). Reaching it while the model
            still calls tools ends the episode as TRUNCATED.
        max_response_tokens: Budget for the whole response side (model + tool tokens). None: the
            `max_new_tokens` slime passes (`--rollout-max-response-len`); a value never raises that.
        max_context_tokens: Optional cap on prompt + response tokens; None uses `--rollout-max-context-len`
            when slime has it.
        max_calls_per_turn: Tool calls executed per model turn; further calls get an error observation.
        max_tool_output_chars: Longer tool outputs are cut (with a marker) before the model sees them;
            None disables the cap.
        env_url: Base URL of a remote environment speaking the NeMo-Gym resources-server API (e.g. one started
            with `python -m m2rl_slime.agent serve`). None runs the environment in-process.
        env_timeout_s: Per-request timeout towards `env_url`.
        env_retries: Attempts for requests that are safe to repeat (session start/close, connection errors).
            A tool call that may have reached the server is never repeated.
        noop_ground_truth: How tasks whose ground truth changes no state are scored. "require_reads" (ours):
            the prediction must also change nothing *and* have executed the ground truth's tools (for an empty
            ground truth: at least one tool of the task's toolkit). "reward_any": NeMo-Gym's rule, under which
            an empty trajectory scores 1.
        created_rows: How rows created during an episode are compared. "ignore_generated_ids" (ours): as a
            multiset without their generated id, so independent creates in another order still match.
            "ordered_with_ids": NeMo-Gym's rule (order and ids must agree).
    """

    csv_dir: str | None = None
    max_turns: int = 6
    max_response_tokens: int | None = None
    max_context_tokens: int | None = None
    max_calls_per_turn: int = 16
    max_tool_output_chars: int | None = 16384
    env_url: str | None = None
    env_timeout_s: float = 30.0
    env_retries: int = 3
    noop_ground_truth: Literal["require_reads", "reward_any"] = "require_reads"
    created_rows: Literal["ignore_generated_ids", "ordered_with_ids"] = "ignore_generated_ids"

    def validate(self) -> None:
        """Check ranges and the URL form (the existence of `csv_dir` is checked where it is used).

        Raises:
            ConfigError: naming the offending key.
        """
        for key in ("max_turns", "max_calls_per_turn", "env_retries"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("max_response_tokens", "max_context_tokens", "max_tool_output_chars"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be >= 1 or null, got {value}")
        if self.env_timeout_s <= 0:
            raise ConfigError(f"env_timeout_s must be > 0, got {self.env_timeout_s}")
        if self.env_url is not None and not self.env_url.startswith(("http://", "https://")):
            raise ConfigError(f"env_url must start with http:// or https://, got {self.env_url!r}")

    def require_csv_dir(self) -> str:
        """Return `csv_dir`, or raise the error an agent sample without a database must produce.

        The directory is checked here, where the database is used, not in `validate`: a recipe is often
        rendered on a machine that does not hold the cluster's data.
        """
        if self.csv_dir is None:
            raise ConfigError(missing_csv_dir_message())
        if not os.path.isdir(self.csv_dir):
            raise ConfigError(f"{CSV_DIR_KEY} {self.csv_dir!r} is not a directory (point it at NeMo-Gym's csv_data)")
        return self.csv_dir


def missing_csv_dir_message() -> str:
    """The one error text for an agent sample that arrives without a configured database."""
    return (
        f"{CSV_DIR_KEY} is not set: agent samples need the workplace database (NeMo-Gym's "
        "resources_servers/workplace_assistant/csv_data); set it in the --custom-config-path YAML under m2rl_agent"
    )
