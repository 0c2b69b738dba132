"""The verdict type of the reward verifiers, re-exported from `m2rl_slime.result` (its home).

Verifiers under `rewards/` import it from here; the agent verifier imports `m2rl_slime.result` directly.
"""

from ..result import Reason, Result

__all__ = ["Reason", "Result"]
