"""Multi-teacher on-policy distillation (MT-OPD) as slime plugins.

slime hooks implemented here (`slime_hooks.py`; both also under `m2rl_slime.hooks`):

- `--rollout-sample-hook-path m2rl_slime.opd.attach_teacher_log_probs`: routes each training sample to
  its domain's teacher (an SGLang server) and sets `sample.teacher_log_probs`;
- `--loss-type custom_loss --custom-loss-function-path m2rl_slime.opd.opd_loss`: reverse-KL
  distillation on the student's own tokens (the alternative is upstream `--use-opd --opd-type sglang`).

Settings come from the `m2rl_opd` key of `--custom-config-path` (`OPDConfig`). `rollout_metrics`
turns the hook's per-sample records into per-domain metrics. `python -m m2rl_slime.opd` starts the
teacher servers and waits for them. Names load lazily: importing this package imports neither torch
nor slime.
"""

from __future__ import annotations

from .._dotted import lazy_exports

__all__ = ["OPDConfig", "attach_teacher_log_probs", "opd_loss", "rollout_metrics"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "OPDConfig": "m2rl_slime.opd.config.OPDConfig",
        "attach_teacher_log_probs": "m2rl_slime.opd.slime_hooks.attach_teacher_log_probs",
        "opd_loss": "m2rl_slime.opd.slime_hooks.opd_loss",
        "rollout_metrics": "m2rl_slime.opd.metrics.rollout_metrics",
    },
)
