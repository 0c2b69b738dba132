"""Per-domain reward metrics of scored samples (pure; no slime import).

For each domain in a rollout batch: sample count, mean reward, the fraction of each reason code, mean
response length and truncation ratio. The slime hooks that log them, `log_rollout` and `log_eval`, live in
`m2rl_slime.rewards.slime_hooks`; their paths of earlier versions, ``m2rl_slime.rewards.metrics.log_rollout``
and ``m2rl_slime.rewards.metrics.log_eval``, still resolve here.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import Any

from .._dotted import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {name: f"m2rl_slime.rewards.slime_hooks.{name}" for name in ("log_rollout", "log_eval")},
)


def _record(sample: Any) -> Mapping[str, Any]:
    metadata = getattr(sample, "metadata", None)
    record = metadata.get("m2rl_reward") if isinstance(metadata, Mapping) else None
    return record if isinstance(record, Mapping) else {}


def _is_truncated(sample: Any) -> bool:
    status = getattr(sample, "status", None)
    return getattr(status, "value", status) == "truncated"


def domain_metrics(samples: Iterable[Any], prefix: str) -> dict[str, float]:
    """Per-domain metrics of scored samples (those without our verdict are grouped as `unscored`)."""
    groups: dict[str, list[Any]] = collections.defaultdict(list)
    for sample in samples:
        groups[_record(sample).get("domain", "unscored")].append(sample)
    metrics: dict[str, float] = {}
    for domain, members in sorted(groups.items()):
        key = f"{prefix}{domain}/"
        n = len(members)
        records = [_record(s) for s in members]
        scores = [float(r["score"]) for r in records if "score" in r]
        metrics[key + "count"] = float(n)
        if scores:
            metrics[key + "reward_mean"] = sum(scores) / len(scores)
        reasons = collections.Counter(r.get("reason", "unscored") for r in records)
        for reason, count in reasons.items():
            metrics[f"{key}reason/{reason}"] = count / n
        lengths = [getattr(s, "response_length", 0) or 0 for s in members]
        metrics[key + "response_len_mean"] = sum(lengths) / n
        metrics[key + "truncated_ratio"] = sum(_is_truncated(s) for s in members) / n
    return metrics
