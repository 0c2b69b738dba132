"""slime hook for eval-only runs: a per-dataset ``custom_rm_path`` that defers scoring to ``eval score``.

`deferred_reward` is set (by `slime_config.dataset_entry`) on the eval datasets whose scorer cannot run
inside slime's reward hook: the HLE LLM judge, BFCL's reference checker in its own environment. It marks
each sample ``metadata["m2rl_reward"] = {"deferred": true, "scorer": <name>}`` and returns 0.0, because
slime's eval logging sums rewards. That 0 is never a score: ``eval collect`` writes these samples with
``reward: null`` (pending) and ``eval summarize`` reports them as pending until ``eval score`` has run.
slime's own ``eval/<name>`` metric of such a dataset is therefore meaningless (it reads 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _mark(sample: Any) -> float | dict[str, float]:
    metadata = getattr(sample, "metadata", None)
    if isinstance(metadata, dict):
        record = metadata.get("m2rl_eval")
        scorer = record.get("scorer") if isinstance(record, Mapping) else None
        metadata["m2rl_reward"] = {"deferred": True, "scorer": scorer}
    return 0.0


async def deferred_reward(args: Any, sample_or_samples: Any, **kwargs: Any) -> Any:
    """``custom_rm_path`` of deferred eval datasets: 0.0 per sample (a dict under ``--reward-key``).

    Args:
        args: slime's arguments (only ``reward_key``/``eval_reward_key`` are read).
        sample_or_samples: one `Sample` or a list of them.
    """
    key = getattr(args, "eval_reward_key", None) or getattr(args, "reward_key", None)

    def value(sample: Any) -> Any:
        score = _mark(sample)
        return {key: score} if key else score

    if isinstance(sample_or_samples, list):
        return [value(s) for s in sample_or_samples]
    return value(sample_or_samples)
