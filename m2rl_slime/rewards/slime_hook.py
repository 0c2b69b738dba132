"""Earlier module path of the reward hook (``m2rl_slime.rewards.slime_hook.reward``), kept so that existing
deployments keep working. The hooks live in `m2rl_slime.rewards.slime_hooks`."""

from .slime_hooks import reward, sample_domain

__all__ = ["reward", "sample_domain"]
