"""Pins the empty-think masking of `m2rl_slime.data.sft_rollout` on token lists (the paper's loss-mask edit)."""

from __future__ import annotations

from m2rl_slime.data.sft_rollout import mask_subsequence

THINK = [151667, 271, 151668]  # Qwen3: <think> \n\n </think>


def test_every_occurrence_inside_the_response_is_masked():
    prompt = [1, 2] + THINK  # an occurrence in the prompt region stays untouched (its mask is not ours)
    response = THINK + [271, 10, 11, 2] + THINK + [271, 12, 2]
    tokens = prompt + response
    mask = [1] * len(response)
    assert mask_subsequence(tokens, mask, THINK) == 6
    assert mask == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1]


def test_partial_and_already_masked_runs():
    tokens = [151667, 271, 5, 151667, 151667, 271, 151668]
    mask = [1, 1, 1, 1, 0, 0, 1]
    assert mask_subsequence(tokens, mask, THINK) == 1  # only the last run; its first two were masked already
    assert mask == [1, 1, 1, 1, 0, 0, 0]
    assert mask_subsequence([1, 2, 3], [1, 1, 1], []) == 0
    assert mask_subsequence([151667, 271], [1, 1], THINK) == 0


def test_long_inputs_stay_linear():
    tokens = [151667] * 200_000
    mask = [1] * len(tokens)
    assert mask_subsequence(tokens, mask, THINK) == 0
