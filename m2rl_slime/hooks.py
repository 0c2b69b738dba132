"""Every slime hook of m2rl_slime, under one dotted path each: ``m2rl_slime.hooks.<name>``.

| slime flag | ``m2rl_slime.hooks.`` | implemented in |
|---|---|---|
| ``--custom-rm-path`` | ``reward`` | `m2rl_slime.rewards.slime_hooks` |
| ``--custom-rollout-log-function-path`` | ``log_rollout`` | `m2rl_slime.rewards.slime_hooks` |
| ``--custom-eval-rollout-log-function-path`` | ``log_eval`` | `m2rl_slime.rewards.slime_hooks` |
| ``--data-source-path`` | ``MultiDomainDataSource`` | `m2rl_slime.data.slime_hooks` |
| ``--rollout-all-samples-process-path`` | ``observe`` | `m2rl_slime.data.curriculum` |
| ``--dynamic-sampling-filter-path`` | ``keep_domain_quota`` | `m2rl_slime.data.slime_quota` |
| ``--data-source-path`` (SFT) | ``SFTDataSource`` | `m2rl_slime.data.sft_source` |
| ``--rollout-function-path`` (SFT) | ``generate_rollout`` | `m2rl_slime.data.sft_rollout` |
| ``--custom-generate-function-path`` | ``generate`` | `m2rl_slime.agent.slime_hooks` |
| ``--rollout-sample-hook-path`` | ``attach_teacher_log_probs`` | `m2rl_slime.opd.slime_hooks` |
| ``--custom-loss-function-path`` | ``opd_loss`` | `m2rl_slime.opd.slime_hooks` |
| ``custom_rm_path`` of an ``--eval-config`` dataset | ``deferred_reward`` | `m2rl_slime.eval.slime_hooks` |

Each hook also keeps the paths of earlier versions (`Hook.legacy`, e.g. ``m2rl_slime.rewards.reward``), so
existing recipes keep working. Importing this module imports neither slime, torch nor aiohttp: a hook is
imported when slime (or anyone) first reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._dotted import lazy_exports


@dataclass(frozen=True, slots=True)
class Hook:
    """One slime hook.

    Attributes:
        flag: The slime flag that takes its dotted path.
        target: Dotted path of the implementation.
        legacy: Older dotted paths of the same object, still accepted.
    """

    flag: str
    target: str
    legacy: tuple[str, ...] = ()


HOOKS: dict[str, Hook] = {
    "reward": Hook(
        "--custom-rm-path",
        "m2rl_slime.rewards.slime_hooks.reward",
        ("m2rl_slime.rewards.reward", "m2rl_slime.rewards.slime_hook.reward"),
    ),
    "log_rollout": Hook(
        "--custom-rollout-log-function-path",
        "m2rl_slime.rewards.slime_hooks.log_rollout",
        ("m2rl_slime.rewards.metrics.log_rollout",),
    ),
    "log_eval": Hook(
        "--custom-eval-rollout-log-function-path",
        "m2rl_slime.rewards.slime_hooks.log_eval",
        ("m2rl_slime.rewards.metrics.log_eval",),
    ),
    "MultiDomainDataSource": Hook(
        "--data-source-path",
        "m2rl_slime.data.slime_hooks.MultiDomainDataSource",
        ("m2rl_slime.data.MultiDomainDataSource",),
    ),
    "observe": Hook("--rollout-all-samples-process-path", "m2rl_slime.data.curriculum.observe"),
    "keep_domain_quota": Hook(
        "--dynamic-sampling-filter-path",
        "m2rl_slime.data.slime_quota.keep_domain_quota",
        ("m2rl_slime.data.keep_domain_quota",),
    ),
    "SFTDataSource": Hook(
        "--data-source-path", "m2rl_slime.data.sft_source.SFTDataSource", ("m2rl_slime.data.SFTDataSource",)
    ),
    "generate_rollout": Hook("--rollout-function-path", "m2rl_slime.data.sft_rollout.generate_rollout"),
    "generate": Hook(
        "--custom-generate-function-path", "m2rl_slime.agent.slime_hooks.generate", ("m2rl_slime.agent.generate",)
    ),
    "attach_teacher_log_probs": Hook(
        "--rollout-sample-hook-path",
        "m2rl_slime.opd.slime_hooks.attach_teacher_log_probs",
        ("m2rl_slime.opd.attach_teacher_log_probs", "m2rl_slime.opd.slime_hook.attach_teacher_log_probs"),
    ),
    "opd_loss": Hook(
        "--custom-loss-function-path",
        "m2rl_slime.opd.slime_hooks.opd_loss",
        ("m2rl_slime.opd.opd_loss", "m2rl_slime.opd.slime_hook.opd_loss"),
    ),
    "deferred_reward": Hook("--eval-config custom_rm_path", "m2rl_slime.eval.slime_hooks.deferred_reward"),
}

__all__ = sorted(HOOKS)


def accepted_paths(name: str) -> frozenset[str]:
    """Every dotted path that loads hook `name`: its ``m2rl_slime.hooks`` path, its target, its legacy paths.

    Raises:
        KeyError: `name` is not one of `HOOKS`.
    """
    hook = HOOKS[name]
    return frozenset({f"{__name__}.{name}", hook.target, *hook.legacy})


__getattr__, __dir__ = lazy_exports(__name__, {name: hook.target for name, hook in HOOKS.items()})
