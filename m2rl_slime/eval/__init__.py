"""Benchmark evaluation of the study's models: the nine benchmarks of the paper, scored offline.

Generation runs either inside slime (an eval-only run whose `--eval-config` is rendered from a suite) or
against any SGLang/OpenAI-compatible server; scoring goes through the reward router and the scorers here.
"""
