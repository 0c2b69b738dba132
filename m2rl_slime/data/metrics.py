"""Realised per-domain counts of a trained batch, as rollout metrics. Pure: no slime import.

`m2rl_slime.hooks.log_rollout` (``--custom-rollout-log-function-path``) merges them into what slime
logs for every rollout, so a run shows the mixture it actually trained on (``rollout/m2rl_data/<pool>/...``)
next to slime's own ``rollout/dynamic_filter/drop_<reason>`` counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any


def trained_batch_metrics(samples: Iterable[Any]) -> dict[str, float]:
    """Per-pool counts of the samples slime trains on in one rollout.

    Args:
        samples: The rollout's training samples (slime passes them flattened; nested lists are walked).

    Returns:
        ``m2rl_data/<pool>/groups`` (distinct ``group_index``), ``m2rl_data/<pool>/samples``,
        ``m2rl_data/<pool>/group_share`` (of all pooled groups) and ``m2rl_data/<pool>/removed`` (samples
        trained with a zeroed loss mask, e.g. aborted agent episodes), for samples that carry the pool name
        ``metadata["source_name"]`` written by `MultiDomainDataSource`; empty without such samples.
    """
    groups: dict[str, set] = defaultdict(set)
    counts: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    for sample in _leaves(samples):
        metadata = getattr(sample, "metadata", None)
        pool = metadata.get("source_name") if isinstance(metadata, dict) else None
        if not isinstance(pool, str):
            continue
        counts[pool] += 1
        removed[pool] += bool(getattr(sample, "remove_sample", False))
        groups[pool].add(getattr(sample, "group_index", None))
    total = sum(len(g) for g in groups.values())
    out: dict[str, float] = {}
    for pool in sorted(counts):
        key = f"m2rl_data/{pool}/"
        out[key + "groups"] = float(len(groups[pool]))
        out[key + "samples"] = float(counts[pool])
        out[key + "group_share"] = len(groups[pool]) / total
        out[key + "removed"] = float(removed[pool])
    return out


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value
