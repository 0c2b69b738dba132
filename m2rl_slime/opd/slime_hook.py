"""Earlier module path of the OPD hooks (``m2rl_slime.opd.slime_hook.opd_loss`` and
``...attach_teacher_log_probs``), kept so that existing deployments keep working. The hooks live in
`m2rl_slime.opd.slime_hooks`."""

from .slime_hooks import attach_teacher_log_probs, opd_loss, resolve_mode

__all__ = ["attach_teacher_log_probs", "opd_loss", "resolve_mode"]
