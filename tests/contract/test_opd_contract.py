"""Pins the MT-OPD plugins against a real slime: args from slime's own parser (both modes), the hook run by
slime's `apply_rollout_sample_hooks` on real `Sample`s, slime's conversion into train data, and the loss
computed with slime's `get_log_probs_and_entropy` / `get_sum_of_sample_mean` / `policy_loss_function`
on CPU (a one-process gloo group with TP = CP = 1).

Also pins the documented equivalence: with zero task advantages and one optimizer step per rollout,
upstream `--use-opd --opd-kl-coef c` (slime's `apply_opd_kl_to_advantages` + PPO loss) produces the same
gradient as `opd_loss` with `kl_coef: c`.

Skipped (with the reason) when slime is not importable, e.g. in CI.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import types

import pytest

pytestmark = pytest.mark.contract

try:
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as mpu
    from slime.backends.megatron_utils.cp_utils import get_sum_of_sample_mean, slice_log_prob_with_cp
    from slime.backends.megatron_utils.loss import apply_opd_kl_to_advantages, policy_loss_function
    from slime.rollout.sample_hooks import apply_rollout_sample_hooks
    from slime.utils.types import Sample
except Exception as exc:  # noqa: BLE001 - ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

from m2rl_slime.opd import opd_loss
from m2rl_slime.opd.config import SKIP_SENTINEL
from m2rl_slime.opd.loss import make_sum_of_sample_mean, response_log_probs

HOOK = "m2rl_slime.opd.attach_teacher_log_probs"
PROMPT = [11, 4, 29, 8]
VOCAB = 17
TEMPERATURE = 0.8


def stub_log_prob(position: int, token: int, temperature: float = TEMPERATURE) -> float:
    """The stub teacher's log-prob of `token` at input `position` (deterministic, scaled by temperature)."""
    return (-0.1 * ((token + 3 * position) % 7) - 0.05) / temperature


async def start_stub_teacher():
    """A loopback `/generate` answering in SGLang's shape with `stub_log_prob` values."""
    from aiohttp import web

    async def generate(request):
        payload = await request.json()
        ids, start = payload["input_ids"], payload["logprob_start_len"]
        temperature = payload["sampling_params"]["temperature"]
        entries = [[None, ids[start], None]] + [
            [stub_log_prob(p, ids[p], temperature), ids[p], None] for p in range(start + 1, len(ids))
        ]
        return web.json_response({"text": "", "meta_info": {"input_token_logprobs": entries}})

    app = web.Application()
    app.router.add_post("/generate", generate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


def slime_args(tmp_path, mode: str, teacher_url: str, *, loss: dict | None = None, task_reward: str = "keep"):
    """Parse a train.py command line with slime's real parser (Megatron's CUDA validation skipped)."""
    import slime.backends.megatron_utils.arguments as megatron_arguments
    import slime.utils.arguments as slime_arguments

    hf = tmp_path / "hf"
    hf.mkdir(exist_ok=True)
    (hf / "config.json").write_text(
        json.dumps(
            {
                "model_type": "qwen3",
                "architectures": ["Qwen3ForCausalLM"],
                "vocab_size": VOCAB,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "head_dim": 8,
                "rope_theta": 1000000,
                "rms_norm_eps": 1e-6,
                "max_position_embeddings": 512,
                "tie_word_embeddings": True,
            }
        )
    )
    opd = {
        "teachers": {"math": {"urls": [teacher_url]}},
        "no_teacher": {"agent": "skip"},
        "task_reward": task_reward,
        "loss": loss or {},
    }
    config = tmp_path / f"custom_config_{mode}.yaml"
    config.write_text(json.dumps({"m2rl_opd": opd}))  # JSON is YAML
    argv = [
        "train.py",
        "--hf-checkpoint",
        str(hf),
        "--num-layers",
        "2",
        "--hidden-size",
        "32",
        "--ffn-hidden-size",
        "64",
        "--num-attention-heads",
        "4",
        "--norm-epsilon",
        "1e-6",
        "--rotary-base",
        "1000000",
        "--rollout-batch-size",
        "1",
        "--n-samples-per-prompt",
        "2",
        "--global-batch-size",
        "2",
        "--num-rollout",
        "1",
        "--rollout-temperature",
        str(TEMPERATURE),
        "--custom-config-path",
        str(config),
        "--rollout-sample-hook-path",
        HOOK,
    ]
    if mode == "upstream":
        argv += ["--use-opd", "--opd-type", "sglang", "--opd-kl-coef", "0.5"]
    else:
        argv += ["--loss-type", "custom_loss", "--custom-loss-function-path", "m2rl_slime.opd.opd_loss"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(megatron_arguments, "validate_args", lambda args: None)
        patch.setattr(sys, "argv", argv)
        return slime_arguments.parse_args()


@pytest.fixture(scope="module")
def model_parallel():
    """A one-process gloo group with Megatron's parallel state (TP = PP = CP = 1); torn down if we made it."""
    if mpu.model_parallel_is_initialized():
        yield
        return
    created = not dist.is_initialized()
    if created:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    mpu.initialize_model_parallel()
    yield
    mpu.destroy_model_parallel()
    if created:
        dist.destroy_process_group()


def make_sample(response: list[int], domain: str, index: int) -> Sample:
    sample = Sample(
        index=index,
        group_index=0,
        prompt="q",
        tokens=PROMPT + response,
        response_length=len(response),
        metadata={"domain": domain},
        status=Sample.Status.COMPLETED,
    )
    sample.loss_mask = [1] * len(response)
    sample.rollout_log_probs = [-0.3] * len(response)
    return sample


def run_hooks(tmp_path, mode: str, samples, *, evaluation=False, **kw):
    async def body():
        runner, url = await start_stub_teacher()
        try:
            args = slime_args(tmp_path, mode, url, **kw)
            return args, await apply_rollout_sample_hooks(args, samples, evaluation=evaluation)
        finally:
            await runner.cleanup()

    return asyncio.run(body())


@pytest.mark.parametrize("mode", ["custom_loss", "upstream"])
def test_slime_runs_the_hook_on_real_samples(tmp_path, model_parallel, mode):
    samples = [make_sample([3, 9, 14], "math", 0), make_sample([5, 6], "agent", 1)]
    args, out = run_hooks(tmp_path, mode, samples)
    assert out == samples and args.rollout_sample_hook_path == [HOOK]
    math, agent = samples
    assert math.teacher_log_probs == pytest.approx([stub_log_prob(p, math.tokens[p]) for p in range(4, 7)])
    assert agent.teacher_log_probs == ([SKIP_SENTINEL] * 2 if mode == "custom_loss" else [-0.3, -0.3])
    for sample in samples:
        assert slice_log_prob_with_cp(sample.teacher_log_probs, len(sample.tokens), sample.response_length)
        assert Sample.from_dict(json.loads(json.dumps(sample.to_dict()))).metadata["opd"]["domain"]


def test_eval_samples_are_left_alone(tmp_path):
    sample = make_sample([3], "math", 0)
    run_hooks(tmp_path, "upstream", [sample], evaluation=True)
    assert sample.teacher_log_probs is None


def test_slime_train_data_carries_teacher_log_probs_and_zero_rewards(tmp_path):
    from slime.ray.rollout import RolloutManager

    samples = [make_sample([3, 9, 14], "math", 0), make_sample([5, 6], "math", 1)]
    args, _ = run_hooks(tmp_path, "upstream", samples, task_reward="zero")
    manager_cls = RolloutManager.__ray_actor_class__
    fake = types.SimpleNamespace(
        args=args, custom_convert_samples_to_train_data_func=None, custom_reward_post_process_func=None
    )
    fake._post_process_rewards = types.MethodType(manager_cls._post_process_rewards, fake)
    train_data = manager_cls._convert_samples_to_train_data(fake, samples)
    assert [len(t) for t in train_data["teacher_log_probs"]] == train_data["response_lengths"] == [3, 2]
    assert train_data["rewards"] == [0.0, 0.0] and train_data["raw_reward"] == [0.0, 0.0]


def packed(seed: int):
    g = torch.Generator().manual_seed(seed)
    totals, responses = [7, 6], [3, 2]
    logits = torch.randn(1, sum(totals), VOCAB, generator=g).requires_grad_(True)
    batch = {
        "unconcat_tokens": [torch.randint(0, VOCAB, (n,), generator=g) for n in totals],
        "total_lengths": totals,
        "response_lengths": responses,
        "loss_masks": [torch.tensor([1.0, 0.0, 1.0]), torch.ones(2)],
        "teacher_log_probs": [-3 * torch.rand(r, generator=g) for r in responses],
    }
    return logits, batch


def test_loss_with_slime_helpers_matches_pure_torch(tmp_path, model_parallel, monkeypatch):
    args = slime_args(tmp_path, "custom_loss", "http://127.0.0.1:1", loss={"kl_coef": 0.7, "kl_clip": 1.5})
    logits, batch = packed(0)
    reducer = get_sum_of_sample_mean(batch["total_lengths"], batch["response_lengths"], batch["loss_masks"])
    loss, metrics = opd_loss(args, batch, logits, reducer)
    (grad,) = torch.autograd.grad(loss, logits)

    import m2rl_slime.opd.slime_hooks as glue

    monkeypatch.setattr(glue, "_student_log_probs", glue._fallback_log_probs)
    fallback = make_sum_of_sample_mean(batch["response_lengths"], batch["loss_masks"])
    loss2, metrics2 = opd_loss(args, batch, logits, fallback)
    (grad2,) = torch.autograd.grad(loss2, logits)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)
    for key in metrics:
        torch.testing.assert_close(metrics[key], metrics2[key])


def test_upstream_shaping_and_custom_loss_give_the_same_gradient(tmp_path, model_parallel):
    upstream = slime_args(tmp_path, "upstream", "http://127.0.0.1:1")
    custom = slime_args(tmp_path, "custom_loss", "http://127.0.0.1:1", loss={"kl_coef": upstream.opd_kl_coef})
    logits, batch = packed(1)
    student = response_log_probs(
        logits,
        unconcat_tokens=batch["unconcat_tokens"],
        total_lengths=batch["total_lengths"],
        response_lengths=batch["response_lengths"],
        temperature=TEMPERATURE,
    )
    old = [s.detach() for s in student]
    rollout_data = {"teacher_log_probs": batch["teacher_log_probs"]}
    advantages = [torch.zeros_like(s) for s in old]  # zero task rewards: A_base = 0
    apply_opd_kl_to_advantages(upstream, rollout_data, advantages, student_log_probs=old)
    reducer = get_sum_of_sample_mean(batch["total_lengths"], batch["response_lengths"], batch["loss_masks"])
    pg_loss, _ = policy_loss_function(upstream, dict(batch, advantages=advantages, log_probs=old), logits, reducer)
    (grad_upstream,) = torch.autograd.grad(pg_loss, logits)
    kl_loss, _ = opd_loss(custom, batch, logits, reducer)
    (grad_custom,) = torch.autograd.grad(kl_loss, logits)
    torch.testing.assert_close(grad_custom, grad_upstream, atol=1e-6, rtol=1e-5)


def test_pg_mix_adds_slimes_policy_loss(tmp_path, model_parallel):
    args = slime_args(tmp_path, "custom_loss", "http://127.0.0.1:1", loss={"kl_coef": 1.0, "pg_coef": 0.25})
    pure = slime_args(tmp_path, "custom_loss", "http://127.0.0.1:1", loss={"kl_coef": 1.0})
    logits, batch = packed(2)
    g = torch.Generator().manual_seed(3)
    batch["advantages"] = [torch.randn(r, generator=g) for r in batch["response_lengths"]]
    reducer = get_sum_of_sample_mean(batch["total_lengths"], batch["response_lengths"], batch["loss_masks"])
    mixed, metrics = opd_loss(args, batch, logits, reducer)
    kl_only, _ = opd_loss(pure, batch, logits, reducer)
    pg, pg_metrics = policy_loss_function(args, batch, logits, reducer)
    torch.testing.assert_close(mixed, kl_only + 0.25 * pg)
    assert {"pg_loss", "pg_clipfrac", "opd_reverse_kl", "opd_loss"} <= set(metrics)
    torch.testing.assert_close(metrics["pg_loss"], pg_metrics["pg_loss"])
