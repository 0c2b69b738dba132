"""slime glue: ``--rollout-function-path m2rl_slime.data.sft_rollout.generate_rollout`` for SFT runs.

slime's own SFT rollout (`slime.rollout.sft_rollout.generate_rollout`) tokenizes each conversation and
builds its loss mask; this function calls it unchanged and adds two things:

1. **The paper's empty-think masking** (``m2rl_data.sft.mask_empty_think: true``). Qwen3's chat template
   opens every assistant turn it renders as the last turn with a think block, and slime's SFT mask
   builder renders each message as the last one, so an assistant turn without reasoning (the "reasoning
   off" rows of the Nemotron sets, tool-call turns, chat) trains on ``<think>\\n\\n</think>``. The paper's
   fork sets the loss mask to 0 on every occurrence of those three tokens (ids 151667, 271, 151668) after
   building the mask: the tokens stay in the context, so what follows is conditioned on them as at
   inference, but the model gets no gradient to close its think block at once, which would teach it to
   skip reasoning (and an empty block passes the RL reward's ``</think>`` gate with no reasoning at all).
   The ``\\n\\n`` after ``</think>`` and the answer stay trained. Here the token pattern comes from
   tokenizing ``m2rl_data.sft.empty_think_text`` with the policy's tokenizer; the mask is edited inside
   the response region only. The fork also shrank ``response_length`` when the first response tokens were
   masked; the loss is the same either way (masked tokens weigh 0, and the per-token normaliser counts
   mask ones), so the length is kept.
2. It tells `SFTDataSource` which rollout it draws, so the state saved at rollout r is the one before
   batch r+1 also under ``train_async.py`` (see `m2rl_slime.data.sft_source`).

This cannot be done by pre-processing the rows: slime's only row-level mask control is a whole-message
``step_loss_mask``, and the three tokens sit inside an assistant message whose answer must stay trained.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..config import parse_dataclass, plugin_setting
from .config import DataConfig

logger = logging.getLogger(__name__)

__all__ = ["generate_rollout", "mask_subsequence"]


def mask_subsequence(tokens: Sequence[int], loss_mask: list[int], pattern: Sequence[int]) -> int:
    """Set `loss_mask` to 0 on every non-overlapping occurrence of `pattern` in `tokens`; returns tokens masked.

    `loss_mask` is aligned with the last ``len(loss_mask)`` tokens (slime's response-only mask). Linear in
    ``len(tokens) * len(pattern)``.
    """
    width = len(pattern)
    if width == 0:
        return 0
    start = len(tokens) - len(loss_mask)
    first, pattern, tokens = pattern[0], list(pattern), list(tokens)
    masked, i, last = 0, start, len(tokens) - width + 1
    while i < last:
        try:
            i = tokens.index(first, i, last)
        except ValueError:
            break
        if tokens[i : i + width] == pattern:
            for j in range(i - start, i - start + width):
                masked += loss_mask[j]
                loss_mask[j] = 0
            i += width
        else:
            i += 1
    return masked


@lru_cache(maxsize=4)
def _pattern(hf_checkpoint: str, text: str) -> tuple[int, ...]:
    from slime.utils.processing_utils import load_tokenizer

    tokenizer = load_tokenizer(hf_checkpoint, trust_remote_code=True)
    ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
    logger.info("SFT rollout: masking the empty think block %r = token ids %s out of the loss", text, list(ids))
    return ids


def generate_rollout(args: Any, rollout_id: int, data_source: Any, evaluation: bool = False) -> Any:
    """slime's SFT rollout, then the optional empty-think masking (see the module docstring)."""
    from slime.rollout.sft_rollout import generate_rollout as slime_sft_rollout

    begin = getattr(data_source, "begin_rollout", None)
    if callable(begin):
        begin(rollout_id)
    samples = slime_sft_rollout(args, rollout_id, data_source, evaluation)
    config = parse_dataclass(DataConfig, plugin_setting(args, "m2rl_data"), "--custom-config-path m2rl_data").sft
    if config.mask_empty_think:
        pattern = _pattern(args.hf_checkpoint, config.empty_think_text)
        masked = sum(mask_subsequence(s.tokens, s.loss_mask, pattern) for group in samples for s in group)
        logger.debug("SFT rollout %d: %d empty-think tokens masked", rollout_id, masked)
    return samples
