"""Self-verification (paper Table 7, Figs. 6-8): ``analyze selfverify``.

Not a slime hook: each model judges its own saved trajectories (an evaluation directory's
``samples.jsonl``) through an OpenAI-compatible server, with the judge prompts of ``prompts.yaml``
(outcome mode: the final answer only; process mode: the whole reasoning, paragraph by paragraph); the
verdicts are compared with the rule verifier's reward.
"""
