"""slime glue of MT-OPD: the rollout sample hook and the custom loss (the only module that imports slime).

- `attach_teacher_log_probs` is `--rollout-sample-hook-path m2rl_slime.opd.attach_teacher_log_probs`:
  slime calls it on every generated sample, before the reward model. It routes the sample to its
  domain's teacher and sets `sample.teacher_log_probs` (one float per response token).
- `opd_loss` is `--loss-type custom_loss --custom-loss-function-path m2rl_slime.opd.opd_loss`.

Which loss consumes the teacher log-probs is read from slime's args (see `resolve_mode`):
upstream mode (`--use-opd --opd-type sglang`) shapes advantages inside slime; custom-loss mode
trains on `opd_loss`. The two differ only in what a `skip` domain's samples carry (docs/opd.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..hooks import accepted_paths
from .config import SKIP_SENTINEL, LossConfig, OPDConfig, load_opd_config
from .teachers import TeacherRouter

logger = logging.getLogger(__name__)

Mode = Literal["upstream", "custom_loss"]
OPD_LOSS_PATHS = accepted_paths("opd_loss")
_CACHE_SIZE = 16
_cache: dict[tuple[str, int], tuple[Any, Any]] = {}


def resolve_mode(args: Any) -> Mode:
    """Which loss will consume the teacher log-probs, from slime's own flags.

    Raises:
        ConfigError: both modes are on (the KL would count twice), upstream OPD is not the sglang
            type, or neither is on (the log-probs would be fetched for nothing).
    """
    use_opd = bool(getattr(args, "use_opd", False))
    custom = (
        getattr(args, "loss_type", None) == "custom_loss"
        and getattr(args, "custom_loss_function_path", None) in OPD_LOSS_PATHS
    )
    if use_opd and custom:
        raise ConfigError(
            "--use-opd and --custom-loss-function-path m2rl_slime.opd.opd_loss are both set: the reverse KL "
            "would be applied twice (advantage shaping and loss); drop one of them"
        )
    if use_opd:
        if getattr(args, "opd_type", None) != "sglang":
            raise ConfigError(f"the teacher hook needs --opd-type sglang, got {getattr(args, 'opd_type', None)!r}")
        return "upstream"
    if custom:
        return "custom_loss"
    raise ConfigError(
        "m2rl_slime.opd.attach_teacher_log_probs is set but nothing uses teacher log-probs: add "
        "`--use-opd --opd-type sglang --opd-kl-coef C` (upstream mode) or "
        "`--loss-type custom_loss --custom-loss-function-path m2rl_slime.opd.opd_loss`"
    )


@dataclass(frozen=True, slots=True)
class _HookState:
    config: OPDConfig
    router: TeacherRouter
    mode: Mode

    @classmethod
    def build(cls, args: Any) -> _HookState:
        config = load_opd_config(args)
        mode = resolve_mode(args)
        if config.task_reward == "zero" and getattr(args, "group_rm", False):
            raise ConfigError("m2rl_opd.task_reward: zero cannot work with --group-rm (slime rescores the group)")
        skipped = sorted(d for d, policy in config.no_teacher.items() if policy == "skip")
        if mode == "upstream" and skipped and not getattr(args, "use_rollout_logprobs", False):
            logger.warning(
                "upstream OPD: skip-domain samples (%s) get teacher_log_probs = rollout_log_probs, so their KL "
                "term is log pi_megatron - log pi_sglang (train/inference mismatch), not exactly 0; use "
                "--use-rollout-logprobs or the custom loss for an exact 0 (docs/opd.md)",
                ", ".join(skipped),
            )
        router = TeacherRouter(config, temperature=getattr(args, "rollout_temperature", 1.0), seed=_seed(args))
        return cls(config, router, mode)


async def attach_teacher_log_probs(
    args: Any, sample: Any, *, rollout_id: int | None = None, evaluation: bool = False
) -> Any:
    """Sample hook: set `sample.teacher_log_probs` from the teacher of the sample's domain.

    Evaluation samples are returned untouched, and so are aborted ones that slime drops or generates
    again (`--partial-rollout`). An aborted sample that stays in the batch excluded from the loss
    (`remove_sample`, e.g. an agent episode whose environment failed) is not scored but gets placeholder
    values of its length: slime takes `teacher_log_probs` for the whole batch when the first sample has
    them. A domain with policy `skip` also gets a placeholder whose KL term is zero (custom loss: the skip
    sentinel; upstream: the rollout log-probs). With `task_reward: zero` the sample's reward is set to 0,
    so slime skips its RM.

    Args:
        args: slime's args (reads `m2rl_opd`, `rollout_temperature`, the OPD/loss flags, `reward_key`).
        sample: A generated `slime.utils.types.Sample`.
        rollout_id: The rollout step (used in error messages).
        evaluation: True for eval rollouts (nothing is done).

    Returns:
        The same sample, or None when it was left untouched.

    Raises:
        TeacherError: the teacher stayed down or returned log-probs that do not fit the sample.
        ConfigError, LabelError: the sample's domain has no teacher and no `skip` policy, or is missing.
    """
    if evaluation:
        return None
    if _status(sample) == "aborted":
        if not getattr(sample, "remove_sample", False):
            return None
        mode = _cached("hook", args, _HookState.build).mode
        sample.teacher_log_probs = _excluded_values(mode, sample)
        sample.metadata = {**(sample.metadata or {}), "opd": {"domain": None, "teacher": None, "excluded": True}}
        return sample
    state: _HookState = _cached("hook", args, _HookState.build)
    sample_id = _sample_id(sample, rollout_id)
    if getattr(sample, "multimodal_inputs", None):
        raise ConfigError(f"sample {sample_id} has multimodal inputs: the teacher hook scores text token ids only")
    route = state.router.route(_raw_domain(sample), sample_id=sample_id)
    length = sample.response_length
    info: dict[str, Any] = {"domain": route.domain, "teacher": None}
    if length == 0:
        sample.teacher_log_probs = []
    elif route.has_teacher:
        score = await state.router.score(route.domain, sample.tokens, length, sample_id=sample_id)
        sample.teacher_log_probs = score.log_probs
        info.update(
            teacher=state.config.teacher_name(route.domain),
            url=score.url,
            attempts=score.attempts,
            latency_s=score.latency_s,
            rollout_reverse_kl=_rollout_reverse_kl(sample),
        )
    else:
        sample.teacher_log_probs = _skip_values(state.mode, sample, route.domain, sample_id)
    sample.metadata = {**(sample.metadata or {}), "opd": info}
    if state.config.task_reward == "zero":
        key = getattr(args, "reward_key", None)
        sample.reward = {key: 0.0} if key else 0.0
    return sample


def opd_loss(
    args: Any, batch: dict[str, Any], logits: Any, sum_of_sample_mean: Callable[[Any], Any]
) -> tuple[Any, dict[str, Any]]:
    """Custom loss: reverse-KL distillation on sampled tokens, optionally mixed with slime's PG loss.

    loss = kl_coef * sum_of_sample_mean(surrogate) [+ pg_coef * slime policy_loss], where the surrogate's
    gradient is clip(log pi - log q) * grad log pi on every loss-masked token with a teacher.

    Args:
        args: slime's args (`m2rl_opd.loss`, `rollout_temperature`, ...).
        batch: slime's micro-batch: `unconcat_tokens`, `total_lengths`, `response_lengths`, `loss_masks`,
            `teacher_log_probs` (CP-local, one tensor per sample), and what slime's PG loss needs.
        logits: `[1, T, V/TP]` float32 policy logits (CP/TP-sharded as slime gives them).
        sum_of_sample_mean: slime's reducer (applies loss masks and per-sample/rollout denominators).

    Returns:
        `(loss, metrics)`: a scalar tensor and detached scalar tensors (`loss`, `opd_loss`,
        `opd_reverse_kl`, `opd_teacher_frac`, `opd_kl_clipfrac`, plus slime's PG metrics when mixed).
    """
    import torch

    from .loss import distillation_terms

    settings: LossConfig = _cached("loss", args, _loss_settings)
    teacher = batch.get("teacher_log_probs")
    if not teacher:
        raise ConfigError(
            "batch has no teacher_log_probs: set --rollout-sample-hook-path m2rl_slime.opd.attach_teacher_log_probs"
        )
    log_probs = _student_log_probs(args, batch, logits)
    for i, (student_i, teacher_i) in enumerate(zip(log_probs, teacher, strict=True)):
        if student_i.numel() != teacher_i.numel():
            raise ConfigError(
                f"sample {i} of the micro-batch: {student_i.numel()} student vs "
                f"{teacher_i.numel()} teacher log-probs (CP slicing disagrees)"
            )
    student = torch.cat(log_probs)
    terms = distillation_terms(student, torch.cat([t.reshape(-1) for t in teacher]), kl_clip=settings.kl_clip)
    kl_loss = sum_of_sample_mean(terms.surrogate)
    loss = settings.kl_coef * kl_loss
    metrics = {
        "opd_loss": kl_loss,
        "opd_reverse_kl": sum_of_sample_mean(terms.reverse_kl),
        "opd_teacher_frac": sum_of_sample_mean(terms.has_teacher),
        "opd_kl_clipfrac": sum_of_sample_mean(terms.clipped),
    }
    if settings.pg_coef > 0:
        try:
            from slime.backends.megatron_utils.loss import policy_loss_function
        except ImportError as exc:
            raise ConfigError(
                f"m2rl_opd.loss.pg_coef > 0 mixes in slime's policy loss, but slime is not importable: {exc}"
            ) from None
        pg_loss, pg_metrics = policy_loss_function(args, batch, logits, sum_of_sample_mean)
        loss = loss + settings.pg_coef * pg_loss
        metrics.update({key: value for key, value in pg_metrics.items() if key != "loss"})
    if student.numel() == 0:
        loss = loss + 0 * logits.sum()
    return loss, {key: value.detach().clone() for key, value in {"loss": loss, **metrics}.items()}


def _student_log_probs(args: Any, batch: dict[str, Any], logits: Any) -> list[Any]:
    """Per-sample response log-probs: slime's own helper (CP/TP-aware), or a pure-torch CP=TP=1 fallback."""
    try:
        from slime.backends.megatron_utils.loss import get_log_probs_and_entropy, get_rollout_top_p_logprob_kwargs
    except ImportError:
        return _fallback_log_probs(args, batch, logits)
    _, result = get_log_probs_and_entropy(
        logits,
        args=args,
        unconcat_tokens=batch["unconcat_tokens"],
        total_lengths=batch["total_lengths"],
        response_lengths=batch["response_lengths"],
        with_entropy=False,
        **get_rollout_top_p_logprob_kwargs(args, batch),
    )
    return result["log_probs"]


def _fallback_log_probs(args: Any, batch: dict[str, Any], logits: Any) -> list[Any]:
    import torch.distributed as dist

    from .loss import response_log_probs

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise ConfigError("slime is not importable in a distributed job: cannot compute TP/CP-sharded log-probs")
    if getattr(args, "rollout_top_p", 1.0) != 1.0:
        raise ConfigError("the pure-torch log-prob fallback does not replay rollout top-p; use slime's helper")
    return response_log_probs(
        logits,
        unconcat_tokens=batch["unconcat_tokens"],
        total_lengths=batch["total_lengths"],
        response_lengths=batch["response_lengths"],
        temperature=getattr(args, "rollout_temperature", 1.0),
    )


def _loss_settings(args: Any) -> LossConfig:
    if getattr(args, "use_opd", False):
        raise ConfigError("opd_loss with --use-opd would apply the reverse KL twice; drop --use-opd")
    return load_opd_config(args).loss


def _skip_values(mode: Mode, sample: Any, domain: str, sample_id: str) -> list[float]:
    length = sample.response_length
    if mode == "custom_loss":
        return [SKIP_SENTINEL] * length
    rollout = sample.rollout_log_probs
    if rollout is None or len(rollout) != length:
        raise ConfigError(
            f"sample {sample_id} (domain {domain!r}, policy skip): upstream OPD needs rollout_log_probs of length "
            f"{length} to stand in for teacher log-probs, got {None if rollout is None else len(rollout)}"
        )
    return [float(x) for x in rollout]


def _excluded_values(mode: Mode, sample: Any) -> list[float]:
    """Teacher log-probs of a sample trained with a zeroed loss mask: any finite values of the right length.

    Chosen so that neither loss mode can count them: the skip sentinel (custom loss), else the rollout
    log-probs (a zero KL term in upstream shaping), else zeros.
    """
    length = sample.response_length
    if mode == "custom_loss":
        return [SKIP_SENTINEL] * length
    rollout = sample.rollout_log_probs
    if rollout is not None and len(rollout) == length:
        return [float(x) for x in rollout]
    return [0.0] * length


def _rollout_reverse_kl(sample: Any) -> float | None:
    """Loss-masked mean of log pi_rollout - log q over the response (None without rollout log-probs)."""
    rollout, teacher = sample.rollout_log_probs, sample.teacher_log_probs
    if rollout is None or len(rollout) != len(teacher):
        return None
    mask = sample.loss_mask if sample.loss_mask is not None else [1] * len(teacher)
    pairs = [(r, t) for r, t, m in zip(rollout, teacher, mask, strict=False) if m]
    return sum(r - t for r, t in pairs) / len(pairs) if pairs else None


def _raw_domain(sample: Any) -> object:
    metadata = sample.metadata or {}
    domain = metadata.get("domain")
    return domain if domain not in (None, "") else metadata.get("rm_type")


def _status(sample: Any) -> str:
    status = getattr(sample, "status", None)
    return str(getattr(status, "value", status))


def _sample_id(sample: Any, rollout_id: int | None) -> str:
    return f"(rollout {rollout_id}, group {sample.group_index}, index {sample.index})"


def _seed(args: Any) -> int:
    seed = getattr(args, "seed", 0)
    return seed if isinstance(seed, int) else 0


def _cached(kind: str, args: Any, build: Callable[[Any], Any]) -> Any:
    """Build per-args state once (args lives for the whole process; it is not hashable, so key by id)."""
    key = (kind, id(args))
    hit = _cache.get(key)
    if hit is not None and hit[0] is args:
        return hit[1]
    value = build(args)
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[key] = (args, value)
    return value
