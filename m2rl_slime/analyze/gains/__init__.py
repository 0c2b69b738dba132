"""Gain consistency (paper Fig. 5): ``analyze gains``.

Not a slime hook: reads the evaluation runner's ``items.jsonl`` of the SFT model (twice, two seeds), the
single-domain experts and the compared models; `core` computes per-item gain vectors and their cosines
with bootstrap intervals, `plot` draws the grouped bars.
"""
