"""slime hooks `--custom-rollout-log-function-path m2rl_slime.rewards.metrics.log_rollout` and
`--custom-eval-rollout-log-function-path m2rl_slime.rewards.metrics.log_eval`: per-domain reward metrics.

For each domain in a rollout batch: sample count, mean reward, the fraction of each reason code, mean
response length and truncation ratio, under `rollout/m2rl/<domain>/...` (eval: `eval/<dataset>/m2rl/...`);
in an OPD run also the teacher hook's per-domain figures (`rollout/opd/<domain>/...`), and with
`MultiDomainDataSource` the realised per-pool counts of the trained batch (`rollout/m2rl_data/<pool>/...`).
The hooks return False so slime still logs all of its own metrics: ours are added to slime's metrics
dict when it passes one, else logged separately at the same step.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)


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


def _pool_metrics(prefix: str) -> dict[str, float]:
    from .pool import _shared

    stats: collections.Counter = collections.Counter()
    for pool in list(_shared.values()):
        stats.update(pool.stats)
    return {f"{prefix}pool/{k}": float(v) for k, v in stats.items()}


def _emit(args: Any, metrics: dict[str, float], extra: Any, step_key: str, rollout_id: int) -> None:
    if isinstance(extra, dict):
        extra.update(metrics)  # slime logs this dict together with its own metrics
        return
    try:
        from slime.observability import logging_utils
        from slime.observability.metric_utils import compute_rollout_step
    except ImportError:  # slime before the observability move (e.g. the M2RL fork)
        from slime.utils import logging_utils
        from slime.utils.metric_utils import compute_rollout_step
    logging_utils.log(args, {**metrics, step_key: compute_rollout_step(args, rollout_id)}, step_key=step_key)


def log_rollout(rollout_id: int, args: Any, samples: list, rollout_extra_metrics: Any, rollout_time: float) -> bool:
    """Add per-domain reward metrics for a training rollout. Returns False: slime's own logging still runs."""
    from ..data.metrics import trained_batch_metrics  # empty unless MultiDomainDataSource drew the samples
    from ..opd.metrics import rollout_metrics as opd_metrics  # empty unless the OPD teacher hook ran

    metrics = {**domain_metrics(samples, "rollout/m2rl/"), **_pool_metrics("rollout/m2rl/")}
    metrics |= {f"rollout/{key}": value for key, value in opd_metrics(samples).items()}
    metrics |= {f"rollout/{key}": value for key, value in trained_batch_metrics(samples).items()}
    logger.info(
        "rollout %s per-domain: %s",
        rollout_id,
        {k: round(v, 4) for k, v in metrics.items() if k.endswith("reward_mean")},
    )
    _emit(args, metrics, rollout_extra_metrics, "rollout/step", rollout_id)
    return False


def log_eval(rollout_id: int, args: Any, data: Mapping[str, Any], extra_metrics: Any) -> bool:
    """Add per-domain reason metrics for each eval dataset. Returns False: slime's own logging still runs."""
    metrics: dict[str, float] = {}
    for name, entry in data.items():
        samples = entry.get("samples") if isinstance(entry, Mapping) else None
        if samples:
            metrics |= domain_metrics(samples, f"eval/{name}/m2rl/")
    if metrics:
        _emit(args, metrics, extra_metrics, "eval/step", rollout_id)
    return False
