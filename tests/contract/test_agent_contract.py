"""Pins `m2rl_slime.agent.generate` against a real slime: a full episode on slime's own `Sample`
(`append_response_tokens`, `Sample.Status`), the hook driven by slime's `generate_and_rm` with our reward
hook scoring the episode, the fall-through of non-agent samples to slime's default generate, and the
handling of aborted episodes.

Skipped (with the reason) when slime is not importable, e.g. in CI.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.contract

try:
    from slime.rollout import sglang_rollout
    from slime.utils.misc import load_function
    from slime.utils.types import Sample
except Exception as exc:  # noqa: BLE001 - ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parents[1] / "agent"))

from agent_harness import ScriptedSGLang, build_tokenizer, episode_script, make_sample, play
from workplaces import REPO, nemo_gym

from m2rl_slime.agent import slime_hooks
from m2rl_slime.agent.tables import load_db
from m2rl_slime.agent.verifier import verify

HOOK = "m2rl_slime.agent.generate"


@pytest.fixture(scope="module")
def wa(example_set, example_data):
    place = REPO if example_set == "repo" else nemo_gym(example_data)
    path = place.root
    tasks = [json.loads(line) for line in (path / "example.jsonl").read_text().splitlines() if line.strip()]
    tokenizer = build_tokenizer([json.dumps(t["responses_create_params"]) for t in tasks])
    script = episode_script(place.reply_query, tasks[0])
    return SimpleNamespace(csv_dir=str(path / "csv_data"), tasks=tasks, tokenizer=tokenizer, script=script)


def test_hook_signature_matches_slimes_contract():
    fn = load_function(HOOK)
    params = tuple(inspect.signature(fn).parameters)
    assert params[:3] == ("args", "sample", "sampling_params") and "evaluation" in params
    assert inspect.iscoroutinefunction(fn)


def test_episode_on_slimes_sample(wa):
    from m2rl_slime.agent.config import AgentConfig

    sample = make_sample(wa.tasks[0], cls=Sample)
    server = asyncio.run(play(wa.tokenizer, load_db(wa.csv_dir), sample, wa.script))
    assert sample.status is Sample.Status.COMPLETED and sample.reward is None
    assert sample.tokens == server.requests[-1]["input_ids"] + server.outputs[-1]
    assert len(sample.loss_mask) == len(sample.rollout_log_probs) == sample.response_length
    assert sum(sample.loss_mask) == sum(len(out) for out in server.outputs)
    restored = Sample.from_dict(sample.to_dict())
    assert restored.metadata["m2rl_agent"]["calls"] == sample.metadata["m2rl_agent"]["calls"]
    assert verify(sample.response, None, sample.metadata, config=AgentConfig(csv_dir=wa.csv_dir)).score == 1.0


class _Semaphore:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False


def _fake_state(tokenizer):
    class FakeGenerateState:
        def __init__(self, args):
            self.args, self.tokenizer, self.semaphore, self.aborted = args, tokenizer, _Semaphore(), False

        @contextmanager
        def dp_rank_context(self):
            yield 0

    return FakeGenerateState


def make_args(csv_dir, **overrides):
    base = {
        "partial_rollout": False,
        "mask_offpolicy_in_partial_rollout": False,
        "group_rm": False,
        "rm_type": None,
        "reward_key": None,
        "custom_generate_function_path": HOOK,
        "custom_rm_path": "m2rl_slime.rewards.reward",
        "rollout_sample_hook_path": [],
        "sglang_router_ip": "127.0.0.1",
        "sglang_router_port": 0,
        "rollout_max_context_len": None,
        "apply_chat_template_kwargs": {},
        "m2rl_agent": {"csv_dir": csv_dir},
        "m2rl_reward": {"workers": 1, "deadline_s": 20.0},
    }
    base.update(overrides)
    return SimpleNamespace(**base)


@pytest.fixture
def routed(monkeypatch, wa):
    """slime's generate_and_rm wired to a scripted SGLang stand-in through our hook."""
    state = _fake_state(wa.tokenizer)
    monkeypatch.setattr(sglang_rollout, "GenerateState", state)
    monkeypatch.setattr(slime_hooks, "GenerateState", state)
    servers = {}

    async def post(url, payload, max_retries=60, headers=None):
        import aiohttp

        async with aiohttp.ClientSession() as http, http.post(servers["url"], json=payload) as resp:
            return await resp.json()

    monkeypatch.setattr(slime_hooks, "post", post)
    return servers


def test_generate_and_rm_runs_the_episode_and_our_reward_scores_it(routed, wa):
    async def scenario():
        server = await ScriptedSGLang(wa.tokenizer, wa.script).start()
        routed["url"] = server.url
        try:
            sample = make_sample(wa.tasks[0], cls=Sample)
            params = {"temperature": 1.0, "max_new_tokens": 4096}
            return await sglang_rollout.generate_and_rm(make_args(wa.csv_dir), sample, params, evaluation=False)
        finally:
            await server.stop()

    sample = asyncio.run(scenario())
    assert sample.status is Sample.Status.COMPLETED
    assert sample.reward == 1.0 and sample.metadata["m2rl_reward"]["reason"] == "ok"


def test_aborted_episode_skips_the_reward_and_is_excluded(routed, wa):
    routed["url"] = "http://127.0.0.1:9/generate"  # nothing listens on the discard port
    sample = make_sample(wa.tasks[0], cls=Sample)
    args = make_args(wa.csv_dir)
    sample = asyncio.run(sglang_rollout.generate_and_rm(args, sample, {"max_new_tokens": 64}, evaluation=False))
    assert sample.status is Sample.Status.ABORTED and sample.remove_sample
    assert sample.get_reward_value(args) == 0.0 and "m2rl_reward" not in sample.metadata
    keyed = make_args(wa.csv_dir, reward_key="score")
    sample = make_sample(wa.tasks[0], cls=Sample)
    sample = asyncio.run(sglang_rollout.generate_and_rm(keyed, sample, {"max_new_tokens": 64}, evaluation=False))
    assert sample.get_reward_value(keyed) == 0.0


def test_non_agent_samples_fall_through_to_slimes_default(monkeypatch, wa):
    seen = []

    async def default(args, sample, sampling_params, evaluation=False):
        seen.append(evaluation)
        return sample

    monkeypatch.setattr(slime_hooks, "default_generate", default)
    monkeypatch.setattr(slime_hooks, "_DEFAULT_TAKES_EVALUATION", True)
    sample = Sample(prompt="1+1?", metadata={"domain": "math"})
    assert asyncio.run(slime_hooks.generate(make_args(wa.csv_dir), sample, {}, evaluation=True)) is sample
    assert seen == [True]


def test_agent_sample_without_csv_dir_fails_naming_the_key(wa):
    from m2rl_slime.errors import ConfigError

    sample = make_sample(wa.tasks[0], cls=Sample)
    with pytest.raises(ConfigError, match="m2rl_agent.csv_dir"):
        asyncio.run(slime_hooks.generate(make_args(wa.csv_dir, m2rl_agent={}), sample, {"max_new_tokens": 8}))
