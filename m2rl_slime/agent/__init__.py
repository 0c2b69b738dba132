"""Agent domain: the workplace-assistant environment, its verifier, and the slime multi-turn rollout.

Implements slime's `--custom-generate-function-path m2rl_slime.agent.generate` (agent samples run a
token-exact tool-calling episode, other samples slime's default generate) and the agent verifier of the
reward registry (`m2rl_slime.agent.verifier.verify`). `python -m m2rl_slime.agent serve` exposes the same
environment over the NeMo-Gym resources-server API.

`generate` is resolved lazily (PEP 562) so that importing this package never imports slime.
"""

from __future__ import annotations

from typing import Any

from .config import AgentConfig
from .env import StepResult, ToolCall, WorkplaceEnv
from .tables import WorkplaceDB, load_db
from .verifier import verify

__all__ = ["AgentConfig", "StepResult", "ToolCall", "WorkplaceDB", "WorkplaceEnv", "generate", "load_db", "verify"]


def __getattr__(name: str) -> Any:
    if name == "generate":
        from .slime_rollout import generate

        return generate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
