"""attach_teacher_log_probs (the --rollout-sample-hook-path hook) with stand-in samples and a loopback teacher.

Pins: teacher log-probs land on the sample with length == response_length and equal a direct forward
of the teacher; evaluation samples and aborted ones slime drops are untouched, aborted ones kept in the batch
(`remove_sample`) get placeholders of their length; skip domains get a zero-KL placeholder
(sentinel in custom-loss mode, rollout log-probs in upstream mode); the mode comes from slime's flags
and contradictory flags are rejected; task rewards are kept or zeroed; the hook records per-sample
OPD info without mutating the caller's metadata dict; a down teacher fails the sample.
"""

from __future__ import annotations

import asyncio

import pytest

from m2rl_slime.errors import ConfigError, TeacherError
from m2rl_slime.opd import attach_teacher_log_probs
from m2rl_slime.opd.config import SKIP_SENTINEL
from m2rl_slime.opd.slime_hooks import resolve_mode

PROMPT = [7, 1, 40, 22]


def opd(url: str, **extra) -> dict:
    return {
        "teachers": {"math": {"urls": [url], "name": "math-rl"}},
        "no_teacher": {"agent": "skip"},
        "backoff_s": 0.001,
        "backoff_max_s": 0.002,
        **extra,
    }


def run_hook(server, make_args_fn, samples, **hook_kwargs):
    async def body():
        await server.start()
        try:
            args = make_args_fn(server.url)
            return [await attach_teacher_log_probs(args, s, rollout_id=3, **hook_kwargs) for s in samples]
        finally:
            await server.stop()

    return asyncio.run(body())


def test_teacher_log_probs_are_attached_and_exact(kit, teacher_model):
    metadata = {"domain": "math", "source_name": "dapo"}
    samples = [
        kit.FakeSample(PROMPT + [3, 9, 11], 3, metadata=metadata, rollout_log_probs=[-1.0, -2.0, -0.5]),
        kit.FakeSample(PROMPT + [60, 61], 2, metadata={"rm_type": "deepscaler"}, loss_mask=[1, 0]),
    ]
    server = kit.TeacherServer(teacher_model)
    results = run_hook(server, lambda url: kit.make_args(opd(url), temperature=0.6), samples)
    assert results == samples
    for sample in samples:
        expected = kit.direct_log_probs(teacher_model, sample.tokens, sample.response_length, 0.6)
        assert len(sample.teacher_log_probs) == sample.response_length
        assert sample.teacher_log_probs == pytest.approx(expected, abs=1e-5)
    info = samples[0].metadata["opd"]
    assert info["domain"] == "math" and info["teacher"] == "math-rl" and info["url"] == server.url
    kl = sum(r - t for r, t in zip([-1.0, -2.0, -0.5], samples[0].teacher_log_probs, strict=True)) / 3
    assert info["rollout_reverse_kl"] == pytest.approx(kl)
    assert "opd" not in metadata  # the caller's dict is not mutated
    assert samples[1].metadata["opd"]["rollout_reverse_kl"] is None  # no rollout log-probs
    assert samples[0].reward is None  # task reward kept


def test_evaluation_and_aborted_samples_are_untouched(kit, teacher_model):
    server = kit.TeacherServer(teacher_model)
    sample = kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "math"})
    aborted = kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "math"}, status=kit.Status.ABORTED)
    assert run_hook(server, lambda url: kit.make_args(opd(url)), [sample], evaluation=True) == [None]
    assert run_hook(server, lambda url: kit.make_args(opd(url)), [aborted]) == [None]
    assert sample.teacher_log_probs is None and aborted.teacher_log_probs is None
    assert server.requests == []


@pytest.mark.parametrize("mode", ["custom_loss", "upstream"])
def test_aborted_sample_kept_in_the_batch_gets_placeholders_of_its_length(kit, mode):
    """An aborted agent episode stays in the batch with remove_sample: slime takes teacher_log_probs from
    every sample once the first has them, so None here breaks the batch (TypeError or a missing key)."""
    server = kit.TeacherServer()
    partial = kit.FakeSample(
        PROMPT + [3, 4, 5], 3, metadata={"domain": "agent"}, rollout_log_probs=[-0.1, -0.2, 0.0], loss_mask=[0, 0, 0]
    )
    empty = kit.FakeSample(PROMPT, 0, metadata={"domain": "agent"}, rollout_log_probs=[], loss_mask=[])
    for sample in (partial, empty):
        sample.status, sample.remove_sample = kit.Status.ABORTED, True
    metadata = partial.metadata
    assert run_hook(server, lambda url: kit.make_args(opd(url), mode=mode), [partial, empty]) == [partial, empty]
    assert partial.teacher_log_probs == ([SKIP_SENTINEL] * 3 if mode == "custom_loss" else [-0.1, -0.2, 0.0])
    assert empty.teacher_log_probs == []
    assert partial.metadata["opd"] == {"domain": None, "teacher": None, "excluded": True} and "opd" not in metadata
    assert server.requests == []


def test_skip_domain_custom_loss_gets_sentinel(kit):
    server = kit.TeacherServer()
    sample = kit.FakeSample(PROMPT + [3, 4], 2, metadata={"domain": "agent"}, rollout_log_probs=[-0.1, -0.2])
    run_hook(server, lambda url: kit.make_args(opd(url)), [sample])
    assert sample.teacher_log_probs == [SKIP_SENTINEL, SKIP_SENTINEL]
    assert sample.metadata["opd"] == {"domain": "agent", "teacher": None}
    assert server.requests == []


def test_skip_domain_upstream_gets_rollout_log_probs(kit):
    server = kit.TeacherServer()
    sample = kit.FakeSample(PROMPT + [3, 4], 2, metadata={"domain": "workbench"}, rollout_log_probs=[-0.1, -0.2])
    run_hook(server, lambda url: kit.make_args(opd(url), mode="upstream"), [sample])
    assert sample.teacher_log_probs == [-0.1, -0.2]
    missing = kit.FakeSample(PROMPT + [3, 4], 2, metadata={"domain": "agent"})
    with pytest.raises(ConfigError, match="needs rollout_log_probs"):
        run_hook(server, lambda url: kit.make_args(opd(url), mode="upstream"), [missing])


def test_task_reward_zero_sets_reward_and_respects_reward_key(kit, teacher_model):
    server = kit.TeacherServer(teacher_model)
    plain = kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "math"})
    keyed = kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "agent"})
    run_hook(server, lambda url: kit.make_args(opd(url, task_reward="zero")), [plain])
    run_hook(server, lambda url: kit.make_args(opd(url, task_reward="zero"), reward_key="score"), [keyed])
    assert plain.reward == 0.0 and keyed.reward == {"score": 0.0}
    with pytest.raises(ConfigError, match="group-rm"):
        run_hook(server, lambda url: kit.make_args(opd(url, task_reward="zero"), group_rm=True), [plain])


def test_empty_response_needs_no_request(kit):
    server = kit.TeacherServer()
    sample = kit.FakeSample(PROMPT, 0, metadata={"domain": "math"})
    run_hook(server, lambda url: kit.make_args(opd(url)), [sample])
    assert sample.teacher_log_probs == [] and server.requests == []


def test_down_teacher_fails_the_sample(kit, unused_port):
    sample = kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "math"}, index=12)
    args = kit.make_args(opd(f"http://127.0.0.1:{unused_port}", max_retries=1))
    with pytest.raises(TeacherError, match=r"teacher 'math-rl' for domain 'math' failed 2 attempt\(s\)"):
        asyncio.run(attach_teacher_log_probs(args, sample, rollout_id=0))
    assert sample.teacher_log_probs is None  # never a silent placeholder


def test_unknown_and_missing_domains_fail(kit):
    args = kit.make_args(opd("http://127.0.0.1:1"))
    image = kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "math"})
    image.multimodal_inputs = {"images": ["x.png"]}
    with pytest.raises(ConfigError, match="multimodal"):
        asyncio.run(attach_teacher_log_probs(args, image))
    with pytest.raises(ConfigError, match="'code', which has no teacher"):
        asyncio.run(attach_teacher_log_probs(args, kit.FakeSample(PROMPT + [3], 1, metadata={"domain": "code"})))
    with pytest.raises(ConfigError, match="m2rl_opd is not set"):
        asyncio.run(attach_teacher_log_probs(kit.make_args({}), kit.FakeSample(PROMPT + [3], 1)))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"use_opd": True, "opd_type": "sglang"}, "upstream"),
        ({"loss_type": "custom_loss", "custom_loss_function_path": "m2rl_slime.opd.opd_loss"}, "custom_loss"),
        (
            {
                "use_opd": True,
                "opd_type": "sglang",
                "loss_type": "custom_loss",
                "custom_loss_function_path": "m2rl_slime.opd.opd_loss",
            },
            "applied twice",
        ),
        ({"use_opd": True, "opd_type": "megatron"}, "needs --opd-type sglang"),
        ({"loss_type": "policy_loss"}, "nothing uses teacher log-probs"),
    ],
)
def test_mode_resolution(flags, expected):
    import argparse

    args = argparse.Namespace(**flags)
    if expected in ("upstream", "custom_loss"):
        assert resolve_mode(args) == expected
    else:
        with pytest.raises(ConfigError, match=expected):
            resolve_mode(args)
