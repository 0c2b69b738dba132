"""BFCL v3 (Berkeley Function Calling Leaderboard) for m2rl_slime: prepare, AST scorer, multi-turn episodes, summary.

Not a slime hook. The AST categories are scored by the pure verifier `verifier.verify` (reward domain
``bfcl``, run in the reward router's worker pool); the multi-turn categories by `episode.run_episode`, which
drives the model through BFCL's turns and executes its calls (and runs bfcl-eval's state checker) in the
isolated bfcl-eval environment that ``python -m m2rl_slime.eval bfcl-env DIR`` creates. `summary.summarize_bfcl`
turns per-item results into the per-category scores and the overall score.
"""

from .bridge import Bridge, BridgeError, BridgeUnavailable
from .calls import message_text
from .episode import EpisodeConfig, run_episode, score_decoded
from .prepare import BfclOptions, prepare_bfcl
from .summary import summarize_bfcl
from .verifier import verify

__all__ = [
    "BfclOptions",
    "Bridge",
    "BridgeError",
    "BridgeUnavailable",
    "EpisodeConfig",
    "message_text",
    "prepare_bfcl",
    "run_episode",
    "score_decoded",
    "summarize_bfcl",
    "verify",
]
