"""Our hooks as slime really calls them: slime's `generate_rollout`, `eval_rollout`, `generate_and_rm_group`
and `RolloutManager.generate/eval/save/load` (its `_convert_samples_to_train_data` and DP split included)
run against a fake SGLang server, with the hooks loaded from a recipe rendered by our launcher and parsed by
slime's parser. See rollout_harness.py for what is faked (only SGLang, and Ray's object store).

Covered: a plain multi-domain rollout and eval; over-sampling with a dynamic filter (with and without the
quota filter); partial rollout; `--group-rm`; an aborted agent episode in both OPD modes; data-source
save/load through slime's checkpoint flow; the curriculum hook; the agent loop under slime's abort flag.

Skipped (with the reason) when slime is not importable, e.g. in CI.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract

try:
    from slime.observability import logging_utils
    from slime.rollout.sglang_rollout import GenerateState, generate_and_rm_group
    from slime.utils.async_utils import run
    from slime.utils.misc import should_run_periodic_action
    from slime.utils.types import Sample
except Exception as exc:  # noqa: BLE001 - ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))

from rollout_harness import DOMAINS, FakeSGLang, Manager, World, connect, parse_recipe, teacher_log_prob

SMALL = [
    "slime.rollout.rollout-batch-size=8",
    "slime.rollout.n-samples-per-prompt=2",
    "slime.rollout.global-batch-size=8",
    "slime.rollout.rollout-max-response-len=2048",
    "slime.rollout.num-rollout=4",
    "plugin.m2rl_data.mixture=uniform",
    "plugin.m2rl_data.gc_freeze=false",
    "plugin.m2rl_reward.workers=1",
]
QUOTA = "m2rl_slime.data.keep_domain_quota"
NONZERO_STD = "slime.rollout.filter_hub.dynamic_sampling_filters.check_reward_nonzero_std"


@contextmanager
def warnings_of(name: str):
    """WARNING records of logger `name` (slime's logger setup can replace pytest's capturing root handler)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World.build(tmp_path_factory.mktemp("work"))


@pytest.fixture
def logged(monkeypatch) -> list[dict]:
    """Every metrics dict slime (and our log hooks) hand to slime's logger."""
    out: list[dict] = []
    monkeypatch.setattr(logging_utils, "log", lambda args, metrics, step_key: out.append(dict(metrics)))
    return out


def rl_multi(world, run_name, *sets, order=DOMAINS):
    return parse_recipe(
        "rl_multi", world, [*SMALL, f"plugin.m2rl_data.prompt_files={world.prompt_files(order)}", *sets], run_name
    )


def pools(samples) -> Counter:
    """Groups per pool in a flattened sample list."""
    return Counter(pool for pool, _ in {(s.metadata["source_name"], s.group_index) for s in samples})


def trained_batch(manager, rollout_id):
    """slime's RolloutManager.generate, keeping the samples it trained on (what its converter received)."""
    seen = {}
    convert = manager._convert_samples_to_train_data

    def spy(samples):
        seen["samples"] = list(samples)
        return convert(samples)

    manager._convert_samples_to_train_data = spy
    boxes = manager.generate(rollout_id)
    manager._convert_samples_to_train_data = convert
    return seen["samples"], [box.inner for box in boxes]


def test_multi_domain_rollout_and_eval_through_slime(world, monkeypatch, logged):
    args = rl_multi(world, "plain", "eval.datasets.2.n_samples_per_eval_prompt=2")
    with FakeSGLang(world.tokenizer) as server:
        connect(args, server)
        manager = Manager(args, monkeypatch)
        samples, ranks = trained_batch(manager, 0)
        assert pools(samples) == {d: 2 for d in DOMAINS}  # no over-sampling: every drawn group is trained
        rewards = {d: [s.reward for s in samples if s.metadata["source_name"] == d] for d in DOMAINS}
        assert all(sorted(rewards[d]) == [0.0, 0.0, 1.0, 1.0] for d in DOMAINS)  # one right, one wrong per group
        assert sum(len(r["tokens"]) for r in ranks) == 16 and "rollout_log_probs" in ranks[0]
        metrics = next(m for m in logged if "rollout/m2rl_data/math/groups" in m)
        assert all(metrics[f"rollout/m2rl_data/{d}/groups"] == 2 for d in DOMAINS)
        manager.eval(0)
    evals = next(m for m in logged if "eval/aime24" in m)
    assert {evals["eval/aime24"], evals["eval/gpqa_diamond"], evals["eval/ifbench"]} == {0.5}  # right, wrong


def test_over_sampling_with_a_dynamic_filter_keeps_exact_domain_counts(world, monkeypatch, logged):
    args = rl_multi(
        world,
        "quota",
        "slime.rollout.over-sampling-batch-size=16",
        f"slime.rollout.dynamic-sampling-filter-path={QUOTA}",
        f"plugin.m2rl_data.quota.filter={NONZERO_STD}",
    )
    latency = {"math": 0.4, "agent": 0.05}  # math and agent answer last
    with FakeSGLang(world.tokenizer, latency=latency) as server:
        connect(args, server)
        manager = Manager(args, monkeypatch)
        for rollout_id in range(2):
            samples, _ = trained_batch(manager, rollout_id)
            assert pools(samples) == {d: 2 for d in DOMAINS}
    metrics = [m for m in logged if "rollout/m2rl_data/math/groups" in m]
    assert len(metrics) == 2 and all(m[f"rollout/m2rl_data/{d}/groups"] == 2 for m in metrics for d in DOMAINS)
    assert metrics[0]["rollout/dynamic_filter/drop_quota_full_science"] >= 1  # fast domains over-produced


def test_without_the_quota_filter_slow_domains_lose_their_share(world, monkeypatch):
    args = rl_multi(
        world,
        "skewed",
        "slime.rollout.over-sampling-batch-size=16",
        f"slime.rollout.dynamic-sampling-filter-path={NONZERO_STD}",
    )
    with FakeSGLang(world.tokenizer, latency={"math": 0.5, "agent": 0.2}) as server:
        connect(args, server)
        with warnings_of("m2rl_slime.data.slime_hooks") as records:
            manager = Manager(args, monkeypatch)
        samples, _ = trained_batch(manager, 0)
    assert pools(samples)["math"] == 0 and sum(pools(samples).values()) == 8  # documented: use the quota filter
    expected = "for exact per-domain counts use --dynamic-sampling-filter-path m2rl_slime.data.keep_domain_quota"
    assert any(expected in r.getMessage() for r in records)


def test_partial_rollout_resumes_aborted_groups_within_their_quota(world, monkeypatch):
    args = rl_multi(
        world,
        "partial",
        "slime.rollout.over-sampling-batch-size=16",
        f"slime.rollout.dynamic-sampling-filter-path={QUOTA}",
        "slime.rollout.partial-rollout=true",
        "slime.rollout.rollout-shuffle=false",  # file order: math draws prompts #0-#3 in rollout 0
    )
    assert args.partial_rollout and not args.rollout_shuffle

    def latency(domain, text):  # math #1 and #3 are still generating when the batch is full
        if domain != "math":
            return 0.0
        return 8.0 if "#1 " in text or "#3 " in text else 1.0

    with FakeSGLang(world.tokenizer, latency=latency) as server:
        connect(args, server)
        manager = Manager(args, monkeypatch)
        first, _ = trained_batch(manager, 0)
        assert pools(first) == {d: 2 for d in DOMAINS}
        buffered = manager.data_source.get_buffer_length()
        assert buffered == 2  # the two slow math groups were aborted mid-generation and queued by slime
        second, _ = trained_batch(manager, 1)
    assert pools(second) == {d: 2 for d in DOMAINS}
    resumed = [s for s in second if s.metadata.get("start_rollout_id") == 0]
    assert len(resumed) == 4 and {s.metadata["source_name"] for s in resumed} == {"math"}
    assert all(s.status is Sample.Status.COMPLETED and s.response.endswith("<|im_end|>") for s in resumed)
    assert sum(r["continued"] for r in server.requests) == 4  # SGLang got prompt + partial response back


def test_group_rm_scores_whole_groups(world, monkeypatch):
    args = rl_multi(world, "group_rm", "slime.rm.group-rm=true")
    assert args.group_rm
    with FakeSGLang(world.tokenizer) as server:
        connect(args, server)
        manager = Manager(args, monkeypatch)
        samples, ranks = trained_batch(manager, 0)
    assert pools(samples) == {d: 2 for d in DOMAINS}
    assert {s.reward for s in samples} == {0.0, 1.0}
    assert all(s.metadata["m2rl_reward"]["reason"] in ("ok", "wrong") for s in samples)
    assert sorted(ranks[0]["raw_reward"]) == sorted(s.reward for s in samples)


@pytest.mark.parametrize("recipe", ["opd", "opd_custom_loss"])
@pytest.mark.parametrize(
    ("order", "aborts"),
    [(DOMAINS, 1), (("agent", "math", "science", "if"), 4)],
    ids=["math_first", "aborted_agent_first"],
)
def test_aborted_agent_episode_in_an_opd_run(world, monkeypatch, recipe, order, aborts):
    """Agent episodes SGLang aborts stay in the batch (remove_sample): slime must still get teacher log-probs
    on every sample, whether a scored sample comes first (else a None in the list: TypeError when slime
    tensorizes it) or an aborted one (else no key at all: the OPD losses fail), and both loss modes must
    run on them."""
    import torch

    with FakeSGLang(world.tokenizer) as server:
        url = f"http://127.0.0.1:{server.port}"
        teachers = "{" + ", ".join(f"{d}: {{urls: [{url}]}}" for d in DOMAINS) + "}"
        sets = [
            *SMALL,
            f"plugin.m2rl_data.prompt_files={world.prompt_files(order)}",
            f"plugin.m2rl_opd.teachers={teachers}",
        ]
        args = parse_recipe(recipe, world, [*sets, "slime.rollout.rollout-shuffle=false"], f"{recipe}_{order[0]}")
        server.abort_first_agent_turns = aborts
        connect(args, server)
        manager = Manager(args, monkeypatch)
        samples, ranks = trained_batch(manager, 0)
    aborted = [s for s in samples if s.status is Sample.Status.ABORTED]
    assert len(aborted) == aborts and all(s.remove_sample for s in aborted)
    assert samples[0].metadata["source_name"] == order[0] and (aborts == 1 or samples[0] in aborted)
    for sample in samples:
        assert len(sample.teacher_log_probs) == sample.response_length
    scored = next(s for s in samples if s.metadata["source_name"] == "math")
    assert scored.teacher_log_probs[0] == pytest.approx(
        teacher_log_prob(len(scored.tokens) - scored.response_length, scored.tokens[-scored.response_length])
    )
    for data in ranks:
        assert all(isinstance(t, torch.Tensor) for t in data["teacher_log_probs"])
        if recipe == "opd":
            from slime.backends.megatron_utils.loss import apply_opd_kl_to_advantages

            advantages = [torch.zeros_like(t) for t in data["rollout_log_probs"]]
            apply_opd_kl_to_advantages(args, data, advantages, student_log_probs=data["rollout_log_probs"])
            assert all(torch.isfinite(a).all() for a in advantages)
        else:
            assert_custom_loss_runs(args, data, monkeypatch)
    if recipe == "opd_custom_loss":  # the recipe skips slime's old-policy forward, which opd_loss never reads
        assert args.use_rollout_logprobs and not args.use_tis and not args.get_mismatch_metrics


def assert_custom_loss_runs(args, data, monkeypatch):
    """opd_loss on one DP rank's real rollout data (pure-torch log-probs: TP = CP = 1, no process group)."""
    import torch

    import m2rl_slime.opd.slime_hooks as glue
    from m2rl_slime.opd import opd_loss
    from m2rl_slime.opd.loss import make_sum_of_sample_mean

    monkeypatch.setattr(glue, "_student_log_probs", glue._fallback_log_probs)
    tokens = data["tokens"]
    total = [len(t) for t in tokens]
    vocab = int(max(int(t.max()) for t in tokens)) + 1
    logits = torch.randn(1, sum(total), vocab, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    batch = {
        "unconcat_tokens": tokens,
        "total_lengths": total,
        "response_lengths": data["response_lengths"],
        "loss_masks": [m.float() for m in data["loss_masks"]],
        "teacher_log_probs": data["teacher_log_probs"],
    }
    reducer = make_sum_of_sample_mean(batch["response_lengths"], batch["loss_masks"])
    loss, metrics = opd_loss(args, batch, logits, reducer)
    assert torch.isfinite(loss) and 0.0 <= float(metrics["opd_teacher_frac"]) <= len(tokens)


def test_data_source_state_survives_slimes_checkpoint_flow(world, monkeypatch):
    """train.py saves the data source at --save-interval; a restart loads `start_rollout_id - 1` from --load."""
    sets = ["slime.ckpt.save-interval=2"]

    def key(samples):
        return sorted((s.index, s.prompt, s.metadata["source_name"]) for s in samples)

    with FakeSGLang(world.tokenizer) as server:
        args = rl_multi(world, "resume", *sets)
        connect(args, server)
        manager = Manager(args, monkeypatch)
        manager.load(args.start_rollout_id - 1)  # fresh run: nothing saved under -1
        batches = {}
        for rollout_id in range(3):
            batches[rollout_id] = key(trained_batch(manager, rollout_id)[0])
            if should_run_periodic_action(rollout_id, args.save_interval, None, args.num_rollout):
                manager.save(rollout_id)
        assert (Path(args.save) / "rollout" / "m2rl_data_source_1.json").is_file()
        assert args.load == args.ref_load  # a fresh run: slime loads the initial weights, not --save

        # the actor's Megatron checkpoint of rollout 1, as slime's save_model leaves it (tracker file only)
        (Path(args.save) / "latest_checkpointed_iteration.txt").write_text("1")
        restarted = rl_multi(world, "resume", *sets)
        assert restarted.load == args.save
        restarted.start_rollout_id = 2  # what the actor reads back from that checkpoint (rollout 1 + 1)
        connect(restarted, server)
        again = Manager(restarted, monkeypatch)
        again.load(restarted.start_rollout_id - 1)
        assert key(trained_batch(again, 2)[0]) == batches[2]


def test_curriculum_hook_moves_the_weights_under_slimes_rollout(world, monkeypatch):
    args = rl_multi(
        world,
        "curriculum",
        "slime.rollout.rollout-all-samples-process-path=m2rl_slime.data.curriculum.observe",
        "plugin.m2rl_data.curriculum={warmup_rollouts: 1, min_groups: 1, ema: 1.0}",
    )

    def respond(domain, prompt, k):
        from rollout_harness import default_response

        return default_response(domain, prompt, 0 if domain == "math" else k)  # math: always solved

    with FakeSGLang(world.tokenizer, respond=respond) as server:
        connect(args, server)
        manager = Manager(args, monkeypatch)
        trained_batch(manager, 0)
        probs = manager.data_source._core.sampler.probs
    assert args.processed_group_count == 8
    assert probs["math"] < probs["science"] and probs["math"] < 0.25  # no GRPO signal left in math


def test_agent_turn_loop_stops_when_slime_aborts(world, monkeypatch):
    """slime's abort() sets GenerateState.aborted and waits for idle servers: no agent turn may start after."""
    args = rl_multi(world, "abort_flag", order=("agent",))
    with FakeSGLang(world.tokenizer) as server:
        connect(args, server)
        manager = Manager(args, monkeypatch)
        state = GenerateState(args)
        flipped = []

        def abort_after_first(record):
            if not flipped:
                state.aborted = True  # what slime's abort() does first
                flipped.append(time.monotonic())

        server.on_agent_response = abort_after_first
        server.agent_alternates = False
        group = manager.data_source.get_samples(1)[0]
        try:
            group = run(generate_and_rm_group(args, group, sampling_params=state.sampling_params.copy()))
        finally:
            state.reset()
    assert all(s.status is Sample.Status.ABORTED and s.remove_sample for s in group)
    # each episode got its first answer (a tool call) after or around the flip, and sent no second turn
    assert len(server.requests) == 2 and all(r["turn"] == 0 for r in server.requests)
    assert all(s.metadata["m2rl_agent"]["stop"] == "aborted" for s in group)


def test_quota_settings_that_cannot_work_fail_at_start(world):
    from slime.utils.misc import load_function

    from m2rl_slime.data import keep_domain_quota
    from m2rl_slime.errors import ConfigError

    args = rl_multi(world, "bad_quota", f"plugin.m2rl_data.quota.filter={NONZERO_STD}")
    source_cls = load_function(args.data_source_path)
    with pytest.raises(ConfigError, match="quota.filter is set but --dynamic-sampling-filter-path is None"):
        source_cls(args)
    args.dynamic_sampling_filter_path, args.buffer_filter_path = QUOTA, "slime.rollout.data_source.pop_first"
    with pytest.raises(ConfigError, match="--buffer-filter-path .* cannot be combined with the quota filter"):
        source_cls(args)
    with pytest.raises(ConfigError, match="needs --data-source-path m2rl_slime.data.MultiDomainDataSource"):
        keep_domain_quota(rl_multi(world, "no_source"), [Sample(metadata={"source_name": "math"})])
    unshuffled = rl_multi(world, "unshuffled", "slime.rollout.rollout-shuffle=false")
    with warnings_of("m2rl_slime.data.slime_hooks") as records:
        groups = source_cls(unshuffled).get_samples(8)
    assert any("--rollout-shuffle is unset, so every pool is read in file order" in r.getMessage() for r in records)
    assert [g[0].prompt.split("] #")[1][0] for g in groups] == ["0", "1"] * 4  # each pool from its first row
