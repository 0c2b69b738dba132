"""Domain-routed verifiable rewards.

slime hooks implemented here (`slime_hooks.py`; all also under `m2rl_slime.hooks`):
- ``--custom-rm-path m2rl_slime.rewards.reward`` (async; one Sample or a list of Samples);
- ``--custom-rollout-log-function-path m2rl_slime.rewards.metrics.log_rollout`` and
  ``--custom-eval-rollout-log-function-path m2rl_slime.rewards.metrics.log_eval`` (per-domain metrics).

Offline: ``m2rl_slime.rewards.score(domain, response, label, metadata)`` and
``python -m m2rl_slime.rewards score FILE.jsonl``. Which verifier grades a domain, and how, comes from
its `m2rl_slime.domains.DomainSpec`. Names resolve lazily.
"""

from __future__ import annotations

from .._dotted import lazy_exports

__all__ = ["Reason", "Result", "reward", "score"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Reason": "m2rl_slime.result.Reason",
        "Result": "m2rl_slime.result.Result",
        "reward": "m2rl_slime.rewards.slime_hooks.reward",
        "score": "m2rl_slime.rewards.router.score",
    },
)
