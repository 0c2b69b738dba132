"""Domain-routed verifiable rewards.

slime hooks implemented here:
- `--custom-rm-path m2rl_slime.rewards.reward` (async; one Sample or a list of Samples);
- `--custom-rollout-log-function-path m2rl_slime.rewards.metrics.log_rollout` (per-domain metrics).

Offline: `m2rl_slime.rewards.score(domain, response, label, metadata)` and
`python -m m2rl_slime.rewards score FILE.jsonl`.
"""

from .result import Reason, Result
from .router import score
from .slime_hook import reward

__all__ = ["Reason", "Result", "reward", "score"]
