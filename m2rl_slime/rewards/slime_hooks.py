"""slime hooks of the reward package: the reward itself and the per-domain reward metrics.

- `reward` is ``--custom-rm-path m2rl_slime.hooks.reward`` (also ``m2rl_slime.rewards.reward``). slime
  awaits `reward(args, sample)` for every generated sample, or `reward(args, samples)` with a list under
  ``--group-rm`` and for fanned-out custom-generate samples (`batched_async_rm`). The domain comes from
  ``sample.metadata["domain"]`` (or M2RL's ``metadata["rm_type"]``, e.g. injected by ``--eval-config``).
  The returned reward is numeric (slime's GRPO normalisation needs a number); with ``--reward-key K`` it
  is a dict holding the score under K. The verdict (domain, score, reason, details) is recorded in
  ``sample.metadata["m2rl_reward"]``; ``sample.response`` is never modified.
- `log_rollout` is ``--custom-rollout-log-function-path m2rl_slime.hooks.log_rollout`` and `log_eval`
  ``--custom-eval-rollout-log-function-path m2rl_slime.hooks.log_eval`` (also
  ``m2rl_slime.rewards.metrics.log_rollout`` / ``log_eval``): per-domain metrics (`metrics.domain_metrics`)
  under ``rollout/m2rl/<domain>/...`` (eval: ``eval/<dataset>/m2rl/...``), the verifier pool's counters,
  in an OPD run the teacher hook's per-domain figures (``rollout/opd/<domain>/...``), and with
  `MultiDomainDataSource` the realised per-pool counts of the trained batch (``rollout/m2rl_data/<pool>/...``).
  They return False so slime still logs all of its own metrics: ours are added to slime's metrics dict
  when it passes one, else logged separately at the same step (the only place this package imports slime,
  lazily).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from .._dotted import load_dotted
from ..config import parse_section, plugin_setting
from ..domains import canonical_domain, domain_names
from ..errors import ConfigError, UnknownNameError
from ..result import bounded
from .config import RewardConfig
from .mcq import prompt_text
from .metrics import domain_metrics
from .pool import pool_stats
from .result import Reason, Result
from .router import Item, Router

logger = logging.getLogger(__name__)

# Per-rollout figures of the other packages, merged into what `log_rollout` logs under ``rollout/``; each
# returns {} when its part did not run: the OPD teacher hook's per-domain KL and teacher counts
# (``opd/<domain>/...``), the realised per-pool counts of the trained batch (``m2rl_data/<pool>/...``).
ROLLOUT_METRICS = ("m2rl_slime.opd.metrics.rollout_metrics", "m2rl_slime.data.metrics.trained_batch_metrics")

_routers: dict[int, tuple[Any, Router]] = {}
_lock = threading.Lock()


def _router(args: Any) -> Router:
    """One Router per `args` object (slime pickles one args per actor), built from our plugin settings."""
    with _lock:
        entry = _routers.get(id(args))
        if entry is None or entry[0] is not args:
            config = RewardConfig.from_mapping(plugin_setting(args, "m2rl_reward"), "m2rl_reward")
            agent_mapping = plugin_setting(args, "m2rl_agent")
            agent_config = parse_section("m2rl_agent", agent_mapping) if agent_mapping else None
            entry = (args, Router(config, agent_config))
            _routers[id(args)] = entry
        return entry[1]


def sample_domain(metadata: Any, default: str | None, where: str) -> str:
    """The canonical domain of a sample, or a ConfigError saying what was seen and how to fix it."""
    if isinstance(metadata, str):
        raise ConfigError(
            f"{where}: metadata is a {type(metadata).__name__} ({metadata[:80]!r}...); slime passes it through "
            "undecoded, so write metadata as a JSON object in jsonl (a struct column in parquet)"
        )
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("domain") or metadata.get("rm_type") or default
    if name is None:
        raise ConfigError(
            f"{where}: no domain: metadata keys seen {sorted(metadata)}; set metadata.domain (one of "
            f"{', '.join(domain_names())}) when preparing data, or m2rl_reward.default_domain for a single-domain run"
        )
    try:
        return canonical_domain(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _aborted(sample: Any) -> bool:
    """slime's ``Sample.Status.ABORTED`` (compared by name: this module does not import slime)."""
    status = getattr(sample, "status", None)
    return getattr(status, "name", status) in ("ABORTED", "aborted")


async def _score_sample(router: Router, sample: Any, position: int) -> Result:
    metadata = sample.metadata
    where = f"sample {position} (index {getattr(sample, 'index', None)})"
    domain = sample_domain(metadata, router.config.default_domain, where)
    if _aborted(sample):
        # An aborted episode (agent rollout) is never graded: under --group-rm slime scores the whole
        # group, aborted members included. It stays 0 with its own reason (its loss is masked anyway).
        result = Result.fail(Reason.ABORTED)
        if isinstance(metadata, dict):
            metadata["m2rl_reward"] = {"domain": domain, "score": 0.0, "reason": result.reason.value, "details": {}}
        return result
    view = dict(metadata) if isinstance(metadata, Mapping) else {}
    if domain == "science" and "prompt_text" not in view:
        prompt = prompt_text(getattr(sample, "prompt", None))
        if prompt:
            view["prompt_text"] = prompt
    result = await router.ascore(Item(domain, sample.response, sample.label, view))
    if isinstance(metadata, dict):
        metadata["m2rl_reward"] = {
            "domain": domain,
            "score": result.score,
            "reason": result.reason.value,
            "details": json.loads(json.dumps(bounded(dict(result.details)), default=str)),
        }
    return result


def _reward_value(args: Any, result: Result) -> float | dict[str, Any]:
    key = getattr(args, "reward_key", None)
    if key:
        return {key: result.score, "reason": result.reason.value}
    return result.score


async def reward(args: Any, sample_or_samples: Any, **kwargs: Any) -> float | dict | list:
    """The `--custom-rm-path` entry point: a float (or dict with `--reward-key`) per sample.

    Args:
        args: slime's parsed arguments (our settings arrive as `args.m2rl_reward` / `args.m2rl_agent`).
        sample_or_samples: One `Sample`, or a list of them (group RM, fan-out).

    Raises:
        ConfigError: a sample has no domain, an unknown domain, or undecoded (string) metadata. This stops
            the rollout at the first such sample, naming it, instead of training on silent zeros.
    """
    router = _router(args)
    if isinstance(sample_or_samples, list):
        results = await asyncio.gather(*(_score_sample(router, s, i) for i, s in enumerate(sample_or_samples)))
        return [_reward_value(args, r) for r in results]
    return _reward_value(args, await _score_sample(router, sample_or_samples, 0))


def _pool_metrics(prefix: str) -> dict[str, float]:
    return {f"{prefix}pool/{k}": float(v) for k, v in pool_stats().items()}


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
    metrics = {**domain_metrics(samples, "rollout/m2rl/"), **_pool_metrics("rollout/m2rl/")}
    for path in ROLLOUT_METRICS:
        metrics |= {f"rollout/{key}": value for key, value in load_dotted(path)(samples).items()}
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
