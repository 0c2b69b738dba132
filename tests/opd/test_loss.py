"""opd_loss and the pure reverse-KL math (CPU, slime absent: the pure-torch log-prob path).

Pins: the gradient of `opd_loss` equals the analytic per-token reverse-KL policy gradient
sum_i 1/n_i sum_t m_t clip(log pi - log q) grad log pi(y_t) on the student's own samples, both in
closed form on the logits and per parameter of a tiny random Qwen3; loss masks and skip-sentinel
tokens contribute nothing; the loss and its gradient vanish when student == teacher; CUDA matches CPU.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from m2rl_slime.errors import ConfigError
from m2rl_slime.opd.config import SKIP_SENTINEL
from m2rl_slime.opd.loss import (
    distillation_terms,
    make_sum_of_sample_mean,
    response_log_probs,
    upstream_shaped_advantages,
)
from m2rl_slime.opd.slime_hooks import opd_loss

VOCAB = 13
TEMPERATURE = 0.8
TOTALS, RESPONSES = [7, 5, 9], [3, 2, 5]


def args(**loss) -> argparse.Namespace:
    opd = {"teachers": {"math": {"urls": ["http://127.0.0.1:1"]}}, "loss": loss}
    return argparse.Namespace(
        m2rl_opd=opd,
        rollout_temperature=TEMPERATURE,
        use_opd=False,
        rollout_top_p=1.0,
        loss_type="custom_loss",
        custom_loss_function_path="m2rl_slime.opd.opd_loss",
    )


def packed_batch(seed: int, *, pad: int = 2, device: str = "cpu"):
    """Random packed logits [1, sum(TOTALS) + pad, V] and a batch with masks and teacher log-probs."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, sum(TOTALS) + pad, VOCAB, generator=g).to(device).requires_grad_(True)
    tokens = [torch.randint(0, VOCAB, (n,), generator=g).to(device) for n in TOTALS]
    masks = [torch.tensor(m, dtype=torch.float32, device=device) for m in ([1, 0, 1], [1, 1], [1, 1, 0, 0, 1])]
    teacher = [(-4 * torch.rand(r, generator=g)).to(device) for r in RESPONSES]
    batch = {
        "unconcat_tokens": tokens,
        "total_lengths": TOTALS,
        "response_lengths": RESPONSES,
        "loss_masks": masks,
        "teacher_log_probs": teacher,
    }
    return logits, batch


def run(loss_args, logits, batch):
    reducer = make_sum_of_sample_mean(batch["response_lengths"], batch["loss_masks"])
    loss, metrics = opd_loss(loss_args, batch, logits, reducer)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, metrics, grad


def closed_form_grad(logits, batch, *, kl_coef=1.0, kl_clip=None):
    """d/dz of sum_i 1/n_i sum_t m_t c_t log softmax(z_r / T)[y_t], with c_t fixed: (onehot - p) / T."""
    z = logits.detach()[0] / TEMPERATURE
    probs = torch.softmax(z, dim=-1)
    grad = torch.zeros_like(logits[0])
    end = 0
    for tokens, total, r, mask, teacher in zip(
        batch["unconcat_tokens"], TOTALS, RESPONSES, batch["loss_masks"], batch["teacher_log_probs"], strict=True
    ):
        end += total
        rows = torch.arange(end - r - 1, end - 1)
        targets = tokens[-r:]
        student = torch.log_softmax(z[rows], -1).gather(-1, targets[:, None])[:, 0]
        coef = student - teacher
        if kl_clip is not None:
            coef = coef.clamp(-kl_clip, kl_clip)
        weight = kl_coef * coef * mask / mask.sum().clamp_min(1)
        onehot = torch.nn.functional.one_hot(targets, VOCAB).to(z.dtype)
        grad[rows] = weight[:, None] * (onehot - probs[rows]) / TEMPERATURE
    return grad[None]


@pytest.mark.parametrize(("kl_coef", "kl_clip"), [(1.0, None), (0.5, 0.7)])
def test_gradient_matches_closed_form_on_logits(kl_coef, kl_clip):
    logits, batch = packed_batch(0)
    _, metrics, grad = run(args(kl_coef=kl_coef, kl_clip=kl_clip), logits, batch)
    torch.testing.assert_close(
        grad, closed_form_grad(logits, batch, kl_coef=kl_coef, kl_clip=kl_clip), atol=1e-6, rtol=1e-5
    )
    if kl_clip is not None:
        assert metrics["opd_kl_clipfrac"] > 0


def test_metrics_are_masked_per_sample_means():
    logits, batch = packed_batch(1)
    loss, metrics, _ = run(args(), logits, batch)
    student = response_log_probs(
        logits,
        unconcat_tokens=batch["unconcat_tokens"],
        total_lengths=TOTALS,
        response_lengths=RESPONSES,
        temperature=TEMPERATURE,
    )
    expected = sum(
        ((s - t) * m).sum() / m.sum()
        for s, t, m in zip(student, batch["teacher_log_probs"], batch["loss_masks"], strict=True)
    )
    torch.testing.assert_close(metrics["opd_reverse_kl"], expected.detach())
    torch.testing.assert_close(metrics["opd_loss"], expected.detach())  # no clipping: value == KL estimate
    torch.testing.assert_close(loss.detach(), metrics["loss"])
    assert metrics["opd_teacher_frac"].item() == pytest.approx(3.0)  # every sample has a teacher
    assert all(not v.requires_grad and v.dim() == 0 for v in metrics.values())


def test_zero_when_student_equals_teacher():
    logits, batch = packed_batch(2)
    student = response_log_probs(
        logits,
        unconcat_tokens=batch["unconcat_tokens"],
        total_lengths=TOTALS,
        response_lengths=RESPONSES,
        temperature=TEMPERATURE,
    )
    batch["teacher_log_probs"] = [s.detach().clone() for s in student]
    loss, metrics, grad = run(args(), logits, batch)
    assert loss.item() == 0.0 and metrics["opd_reverse_kl"].item() == 0.0
    assert torch.count_nonzero(grad) == 0


def test_masked_tokens_contribute_nothing():
    logits, batch = packed_batch(3)
    loss, _, grad = run(args(), logits, batch)
    changed = dict(batch, teacher_log_probs=[t.clone() for t in batch["teacher_log_probs"]])
    changed["teacher_log_probs"][0][1] = -30.0  # masked (tool) token of sample 0
    changed["teacher_log_probs"][2][2:4] = -25.0  # masked tokens of sample 2
    loss2, _, grad2 = run(args(), logits, changed)
    assert loss2.item() == loss.item()
    assert torch.equal(grad, grad2)
    # the logit row predicting sample 0's masked token (row 7 - 3 - 1 + 1 = 4) gets no gradient
    assert torch.count_nonzero(grad[0, 4]) == 0


def test_skip_sentinel_sample_has_no_kl_term():
    logits, batch = packed_batch(4)
    batch["teacher_log_probs"][1] = torch.full((2,), SKIP_SENTINEL)
    _, metrics, grad = run(args(), logits, batch)
    assert torch.count_nonzero(grad[0, 7 + 5 - 2 - 1 : 7 + 5 - 1]) == 0  # rows of sample 1's response
    assert metrics["opd_teacher_frac"].item() == pytest.approx(2.0)
    expected = closed_form_grad(
        logits,
        dict(batch, teacher_log_probs=[batch["teacher_log_probs"][0], torch.zeros(2), batch["teacher_log_probs"][2]]),
    )
    expected[0, 9:11] = 0
    torch.testing.assert_close(grad, expected, atol=1e-6, rtol=1e-5)


def _sample_responses(model, prompts, length, generator):
    """Sample from the student at the rollout temperature (its own tokens)."""
    out = []
    for prompt in prompts:
        tokens = list(prompt)
        with torch.no_grad():
            for _ in range(length):
                logits = model(torch.tensor([tokens])).logits[0, -1] / TEMPERATURE
                tokens.append(int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)))
        out.append(tokens)
    return out


def test_gradient_matches_reverse_kl_policy_gradient_on_tiny_qwen3(kit, student_model, teacher_model):
    generator = torch.Generator().manual_seed(5)
    sequences = _sample_responses(student_model, [[3, 14, 15], [9, 26]], 4, generator)
    responses = [4, 4]
    masks = [torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.ones(4)]
    teacher = [torch.tensor(kit.direct_log_probs(teacher_model, s, 4, TEMPERATURE)) for s in sequences]
    params = [p for p in student_model.parameters()]
    logits = torch.cat([student_model(torch.tensor([s])).logits.float() for s in sequences], dim=1)
    batch = {
        "unconcat_tokens": [torch.tensor(s) for s in sequences],
        "total_lengths": [len(s) for s in sequences],
        "response_lengths": responses,
        "loss_masks": masks,
        "teacher_log_probs": teacher,
    }
    loss, _ = opd_loss(args(kl_coef=0.3), batch, logits, make_sum_of_sample_mean(responses, masks))
    got = torch.autograd.grad(loss, params)

    # Analytic: sum over samples and unmasked tokens of 0.3 / n_i * (log pi - log q) * grad log pi(y_t).
    expected = [torch.zeros_like(p) for p in params]
    for seq, mask, teach in zip(sequences, masks, teacher, strict=True):
        seq_logits = student_model(torch.tensor([seq])).logits[0].float() / TEMPERATURE
        for t in range(4):
            position = len(seq) - 4 + t
            log_pi = torch.log_softmax(seq_logits[position - 1], -1)[seq[position]]
            if mask[t] == 0:
                continue
            weight = 0.3 / mask.sum() * (log_pi.detach() - teach[t])
            for acc, g in zip(expected, torch.autograd.grad(log_pi, params, retain_graph=True), strict=True):
                acc += weight * g
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-4)


def test_response_log_probs_match_log_softmax_with_padding():
    logits, batch = packed_batch(6, pad=3)
    got = response_log_probs(
        logits,
        unconcat_tokens=batch["unconcat_tokens"],
        total_lengths=TOTALS,
        response_lengths=RESPONSES,
        temperature=TEMPERATURE,
    )
    z = torch.log_softmax(logits[0] / TEMPERATURE, -1)
    assert [g.shape[0] for g in got] == RESPONSES
    torch.testing.assert_close(got[2], z[21 - 5 - 1 : 20].gather(-1, batch["unconcat_tokens"][2][-5:, None])[:, 0])


def test_bad_batches_and_flags_are_rejected():
    logits, batch = packed_batch(7)
    with pytest.raises(ConfigError, match="no teacher_log_probs"):
        run(args(), logits, dict(batch, teacher_log_probs=None))
    with pytest.raises(ConfigError, match="applied twice|apply the reverse KL twice"):
        run(argparse.Namespace(**{**vars(args()), "use_opd": True}), logits, batch)
    short = dict(batch, teacher_log_probs=[t[:-1] for t in batch["teacher_log_probs"]])
    with pytest.raises(ConfigError, match="student vs"):
        run(args(), logits, short)
    with pytest.raises(ConfigError, match="pg_coef"):
        run(args(pg_coef=0.5), logits, batch)
    with pytest.raises(ValueError, match="differ in shape"):
        distillation_terms(torch.zeros(3), torch.zeros(4))


def test_upstream_shaping_formula():
    shaped = upstream_shaped_advantages(
        [torch.ones(2)], [torch.tensor([-1.0, -2.0])], [torch.tensor([-1.5, -1.0])], kl_coef=2.0
    )
    torch.testing.assert_close(shaped[0], torch.tensor([1.0 - 2 * 0.5, 1.0 + 2 * 1.0]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    results = []
    for device in ("cpu", "cuda"):
        logits, batch = packed_batch(8, device=device)
        loss, metrics, grad = run(args(kl_coef=0.7, kl_clip=2.0), logits, batch)
        results.append((loss.cpu(), {k: v.cpu() for k, v in metrics.items()}, grad.cpu()))
    (loss_cpu, metrics_cpu, grad_cpu), (loss_gpu, metrics_gpu, grad_gpu) = results
    torch.testing.assert_close(loss_gpu, loss_cpu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_gpu, grad_cpu, atol=1e-6, rtol=1e-4)
    for key in metrics_cpu:
        torch.testing.assert_close(metrics_gpu[key], metrics_cpu[key], atol=1e-5, rtol=1e-5)
