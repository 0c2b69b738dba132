"""slime hook ``--dynamic-sampling-filter-path m2rl_slime.data.keep_domain_quota``: exact domain counts per
trained batch under over-sampling, dynamic filters and partial rollout.

slime calls the filter on every finished group of a rollout (``call_dynamic_filter(fn, args, group)``) and
trains on the first ``--rollout-batch-size`` groups it keeps. This filter keeps a group only while its
domain's quota for the batch is open (`m2rl_slime.data.quota.BatchQuota`), after running the filter
named in ``m2rl_data.quota.filter`` (e.g. slime's ``check_reward_nonzero_std``). Drops carry a reason
prefixed with the domain, so slime's own ``rollout/dynamic_filter/drop_<reason>`` metrics are per domain.
The quota state lives in `MultiDomainDataSource`, found through the args object both receive.
"""

from __future__ import annotations

import logging
from typing import Any

from slime.rollout.filter_hub.base_types import DynamicFilterOutput, call_dynamic_filter

from ..errors import ConfigError
from ..hooks import accepted_paths
from .quota import Verdict

logger = logging.getLogger(__name__)

QUOTA_FILTER_PATHS = accepted_paths("keep_domain_quota")
_sources: dict[int, tuple[Any, Any]] = {}


def register(args: Any, source: Any) -> None:
    """Make `source` (a MultiDomainDataSource) the quota state of the filter calls that get `args`."""
    _sources[id(args)] = (args, source)


def group_pool(group: list[Any]) -> str:
    """The pool (``metadata["source_name"]``) of a group, also for fanned-out groups (lists of lists).

    Raises:
        ConfigError: the group's first sample has no pool name (a hook replaced its metadata).
    """
    sample = group[0]
    while isinstance(sample, list):
        sample = sample[0]
    metadata = getattr(sample, "metadata", None)
    pool = metadata.get("source_name") if isinstance(metadata, dict) else None
    if not isinstance(pool, str):
        raise ConfigError(
            f"group of sample index {getattr(sample, 'index', None)} has no metadata['source_name']; the quota "
            "filter needs the pool MultiDomainDataSource wrote (a hook must keep the existing metadata keys)"
        )
    return pool


def keep_domain_quota(args: Any, samples: list[Any], **kwargs: Any) -> DynamicFilterOutput:
    """slime dynamic-sampling filter: keep a finished group while its domain's quota is open.

    Args:
        args: slime's args (the same object the data source was built with).
        samples: One finished group.
        **kwargs: Passed on to the inner filter.

    Returns:
        slime's `DynamicFilterOutput`; drop reasons are ``quota_full_<domain>`` or
        ``<domain>_<inner reason>``.

    Raises:
        ConfigError: the data source is not `m2rl_slime.data.MultiDomainDataSource`.
    """
    entry = _sources.get(id(args))
    source = entry[1] if entry is not None and entry[0] is args else None
    quota = getattr(source, "batch_quota", None)
    if quota is None:
        raise ConfigError(
            "--dynamic-sampling-filter-path m2rl_slime.data.keep_domain_quota needs --data-source-path "
            "m2rl_slime.data.MultiDomainDataSource (it holds the per-domain quotas); put another filter in "
            "m2rl_data.quota.filter"
        )
    inner = call_dynamic_filter(source.inner_filter, args, samples, **kwargs)
    pool = group_pool(samples)
    decision = quota.decide(
        pool, Verdict(bool(inner.keep), inner.reason, bool(getattr(inner, "keep_when_insufficient", False)))
    )
    if decision.forced and quota.forced[pool] == 1:
        logger.warning(
            "quota filter: the inner filter rejected %d groups of domain %r in this rollout (patience %.1f x "
            "quota %d); keeping its next groups anyway so the rollout can finish",
            quota.rejected[pool],
            pool,
            quota.patience,
            quota.quota.get(pool, 0),
        )
    return DynamicFilterOutput(keep=decision.keep, reason=decision.reason)
