"""Reverse-KL distillation on the student's own tokens: pure torch, device-agnostic, no slime import.

For a response y ~ pi_theta (the student, at the rollout temperature) and a teacher q, the per-token
reverse KL at position t is KL(pi(.|c_t) || q(.|c_t)) and its gradient is

    grad KL_t = E_{v ~ pi(.|c_t)} [ (log pi(v|c_t) - log q(v|c_t)) * grad log pi(v|c_t) ]

(the "+1" of the exact derivative multiplies E[grad log pi] = 0 and is dropped). The student sampled
v = y_t, so k_t * grad log pi(y_t|c_t) with k_t = log pi(y_t) - log q(y_t) is an unbiased one-sample
estimate. `distillation_terms` builds a per-token surrogate whose value is k_t (optionally clipped)
and whose gradient is exactly that estimate, so `loss = reducer(surrogate)` descends the reverse KL.

Tokens whose teacher log-prob is the skip sentinel (a positive value, impossible for a log-prob) get
a zero coefficient: no teacher, no KL term.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .config import SKIP_THRESHOLD


@dataclass(frozen=True, slots=True)
class DistillTerms:
    """Per-token pieces of the distillation loss (all 1-D, same length as the student log-probs).

    Attributes:
        surrogate: Value = clipped k_t on teacher tokens (0 elsewhere); gradient = that value times
            grad log pi(y_t). Reduce it with slime's `sum_of_sample_mean` to get the loss.
        reverse_kl: k_t = log pi(y_t) - log q(y_t), unclipped, detached; 0 where there is no teacher.
        has_teacher: 1.0 where a teacher log-prob exists, 0.0 on skip-sentinel tokens.
        clipped: 1.0 where |k_t| exceeded the clip bound.
    """

    surrogate: torch.Tensor
    reverse_kl: torch.Tensor
    has_teacher: torch.Tensor
    clipped: torch.Tensor


def distillation_terms(
    student_log_probs: torch.Tensor, teacher_log_probs: torch.Tensor, *, kl_clip: float | None = None
) -> DistillTerms:
    """Per-token reverse-KL surrogate on sampled tokens.

    Args:
        student_log_probs: log pi_theta(y_t), 1-D, differentiable (concatenated over samples).
        teacher_log_probs: log q(y_t), same shape; values > SKIP_THRESHOLD mark tokens without a teacher.
            Moved to the student's device and dtype.
        kl_clip: Clip k_t to [-kl_clip, kl_clip] in the gradient coefficient (None: no clipping).

    Returns:
        The per-token terms; masks are not applied here (slime's reducer applies the loss masks).

    Raises:
        ValueError: the two tensors differ in shape.
    """
    if student_log_probs.shape != teacher_log_probs.shape:
        raise ValueError(
            f"student log-probs {tuple(student_log_probs.shape)} and teacher log-probs "
            f"{tuple(teacher_log_probs.shape)} differ in shape"
        )
    teacher = teacher_log_probs.detach().to(device=student_log_probs.device, dtype=student_log_probs.dtype)
    student = student_log_probs.detach()
    has_teacher = teacher <= SKIP_THRESHOLD
    reverse_kl = torch.where(has_teacher, student - teacher, torch.zeros_like(student))
    if kl_clip is None:
        coef = reverse_kl
        clipped = torch.zeros_like(reverse_kl)
    else:
        coef = reverse_kl.clamp(-kl_clip, kl_clip)
        clipped = (reverse_kl.abs() > kl_clip).to(reverse_kl.dtype)
    surrogate = coef * (student_log_probs - student) + coef
    return DistillTerms(surrogate, reverse_kl, has_teacher.to(student.dtype), clipped)


def response_log_probs(
    logits: torch.Tensor,
    *,
    unconcat_tokens: Sequence[torch.Tensor],
    total_lengths: Sequence[int],
    response_lengths: Sequence[int],
    temperature: float = 1.0,
) -> list[torch.Tensor]:
    """Per-sample response-token log-probs from packed logits (no context or tensor parallelism).

    The pure-torch equivalent of slime's `get_log_probs_and_entropy(...)[1]["log_probs"]` for CP=1,
    TP=1: samples are packed back to back along T, position p predicts token p+1, and the logits are
    divided by the rollout temperature.

    Args:
        logits: `[1, T, V]` float32; T may exceed sum(total_lengths) (padding at the end).
        unconcat_tokens: Prompt+response token ids per sample.
        total_lengths: len(tokens) per sample.
        response_lengths: Response length per sample.
        temperature: The rollout temperature.

    Returns:
        One `[response_length]` tensor per sample, differentiable w.r.t. `logits`.
    """
    if logits.dim() != 3 or logits.size(0) != 1:
        raise ValueError(f"logits must be [1, T, V], got {tuple(logits.shape)}")
    if logits.size(1) < sum(total_lengths):
        raise ValueError(f"logits cover {logits.size(1)} positions, samples need {sum(total_lengths)}")
    flat = logits[0]
    if temperature != 1.0:
        flat = flat / temperature
    out = []
    offset = 0
    for tokens, total, response in zip(unconcat_tokens, total_lengths, response_lengths, strict=True):
        end = offset + total
        chunk = flat[end - response - 1 : end - 1]
        targets = tokens[-response:].to(device=chunk.device, dtype=torch.long) if response else tokens[:0].long()
        log_norm = torch.logsumexp(chunk, dim=-1)
        out.append(chunk.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_norm)
        offset = end
    return out


def make_sum_of_sample_mean(
    response_lengths: Sequence[int], loss_masks: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """slime's default reducer for CP=1: sum over samples of each sample's loss-masked token mean.

    `x` is the concatenation of per-token values over samples; masked tokens (tool outputs, removed
    samples) contribute nothing, and a sample's denominator is its number of unmasked tokens (>= 1).
    """

    def sum_of_sample_mean(x: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for x_i, mask in zip(x.split(list(response_lengths)), loss_masks, strict=True):
            mask = mask.to(device=x.device, dtype=x.dtype)
            total = total + (x_i * mask).sum() / mask.sum().clamp_min(1)
        return total

    return sum_of_sample_mean


def upstream_shaped_advantages(
    advantages: Sequence[torch.Tensor],
    student_log_probs: Sequence[torch.Tensor],
    teacher_log_probs: Sequence[torch.Tensor],
    kl_coef: float,
) -> list[torch.Tensor]:
    """The advantages upstream slime trains on with `--use-opd --opd-type sglang --opd-kl-coef c`.

    A_t = A_base_t - c * (log pi_old(y_t) - log q(y_t)), per sample, before `--normalize-advantages`.
    Kept here to document (and test against slime) the math of upstream mode in docs/opd.md.
    """
    return [
        adv - kl_coef * (student.to(adv.device) - teacher.to(adv.device))
        for adv, student, teacher in zip(advantages, student_log_probs, teacher_log_probs, strict=True)
    ]
