"""Agent domain: the workplace-assistant environment, its verifier, and the slime multi-turn rollout.

Implements slime's `--custom-generate-function-path m2rl_slime.agent.generate` (`slime_hooks.py`; also
`m2rl_slime.hooks.generate`: agent samples run a token-exact tool-calling episode, other samples slime's
default generate) and the agent domain's verifier (`m2rl_slime.agent.verifier.verify`, named by its
`DomainSpec`). `python -m m2rl_slime.agent serve` exposes the same environment over the NeMo-Gym
resources-server API.

Names resolve lazily, so importing this package never imports slime.
"""

from __future__ import annotations

from .._dotted import lazy_exports

__all__ = ["AgentConfig", "StepResult", "ToolCall", "WorkplaceDB", "WorkplaceEnv", "generate", "load_db", "verify"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AgentConfig": "m2rl_slime.agent.config.AgentConfig",
        "StepResult": "m2rl_slime.agent.env.StepResult",
        "ToolCall": "m2rl_slime.agent.env.ToolCall",
        "WorkplaceDB": "m2rl_slime.agent.tables.WorkplaceDB",
        "WorkplaceEnv": "m2rl_slime.agent.env.WorkplaceEnv",
        "generate": "m2rl_slime.agent.slime_hooks.generate",
        "load_db": "m2rl_slime.agent.tables.load_db",
        "verify": "m2rl_slime.agent.verifier.verify",
    },
)
