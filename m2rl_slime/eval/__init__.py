"""Benchmark evaluation of the study's models: Avg@K on the paper's nine benchmarks, and the tables.

Not a slime hook itself, except `slime_hooks.deferred_reward` (a per-dataset ``custom_rm_path`` of eval-only
runs). Generation runs either inside slime (``launch/eval.sh``: an eval-only run whose ``--eval-config`` is
rendered from a suite, `slime_config`) or against SGLang/OpenAI-compatible servers (``eval run``,
`runner`); both end in the same ``samples.jsonl`` / ``items.jsonl`` (`samples`). Scoring goes through the
reward router and the scorer registry (`scorers.SCORERS`); reports are `summary` and `compare`.
Command line: ``python -m m2rl_slime.eval {run,collect,score,summarize,compare,suites}``.
"""

from .suite import Benchmark, Suite, load_suite

__all__ = ["Benchmark", "Suite", "load_suite"]
