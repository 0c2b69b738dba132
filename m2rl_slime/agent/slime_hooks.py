"""slime hook `--custom-generate-function-path m2rl_slime.agent.generate`: multi-turn agent rollouts.

Agent samples (`metadata.domain == "agent"`, or an alias such as M2RL's `rm_type: workbench`) run the
token-exact tool-calling loop of `episode.py` against slime's SGLang router; every other sample falls
through to slime's default `slime.rollout.sglang_rollout.generate`, so one setting serves a multi-task run.
The only module of `m2rl_slime.agent` that imports slime.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping
from typing import Any

from slime.rollout.sglang_rollout import GenerateState
from slime.rollout.sglang_rollout import generate as default_generate
from slime.utils.http_utils import post
from slime.utils.types import Sample

from ..config import parse_dataclass, plugin_setting
from ..domains import canonical_domain
from ..errors import UnknownNameError
from .config import AgentConfig
from .episode import episode_env, episode_limits, run_episode
from .template import ChatRenderer

_lock = threading.Lock()
_configs: dict[int, tuple[Any, AgentConfig]] = {}
_renderers: dict[tuple[int, str], tuple[Any, ChatRenderer]] = {}
_DEFAULT_TAKES_EVALUATION = "evaluation" in inspect.signature(default_generate).parameters


def agent_config(args: Any) -> AgentConfig:
    """The `m2rl_agent` settings of this run, parsed once per `args` object."""
    with _lock:
        entry = _configs.get(id(args))
        if entry is None or entry[0] is not args:
            config = parse_dataclass(AgentConfig, plugin_setting(args, "m2rl_agent"), "m2rl_agent")
            entry = _configs[id(args)] = (args, config)
        return entry[1]


def is_agent_sample(args: Any, sample: Sample) -> bool:
    """True for samples of the agent domain (by metadata, else by `m2rl_reward.default_domain`)."""
    metadata = sample.metadata if isinstance(sample.metadata, Mapping) else {}
    name = (
        metadata.get("domain") or metadata.get("rm_type") or plugin_setting(args, "m2rl_reward").get("default_domain")
    )
    try:
        return name is not None and canonical_domain(name) == "agent"
    except UnknownNameError:
        return False  # the reward hook reports unknown domains; generation is the default one


def _renderer(tokenizer: Any, kwargs: Mapping[str, Any]) -> ChatRenderer:
    key = (id(tokenizer), repr(sorted(kwargs.items())))
    with _lock:
        entry = _renderers.get(key)
        if entry is None or entry[0] is not tokenizer:
            entry = _renderers[key] = (tokenizer, ChatRenderer(tokenizer, kwargs))
        return entry[1]


async def generate(args: Any, sample: Sample, sampling_params: dict[str, Any], evaluation: bool = False) -> Sample:
    """slime's custom generate: an agent episode for agent samples, slime's default generate otherwise.

    The agent sample's token stream is exactly what the model was conditioned on; `sample.reward` is left
    None so `--custom-rm-path m2rl_slime.rewards.reward` scores it from `metadata["m2rl_agent"]["calls"]`.

    Raises:
        ConfigError: an agent sample arrives while `m2rl_agent.csv_dir` is unset.
    """
    if not is_agent_sample(args, sample):
        if _DEFAULT_TAKES_EVALUATION:
            return await default_generate(args, sample, sampling_params, evaluation=evaluation)
        return await default_generate(args, sample, sampling_params)
    config = agent_config(args)
    metadata = sample.metadata if isinstance(sample.metadata, Mapping) else {}
    env = episode_env(config, metadata.get("tools"))
    state = GenerateState(args)
    template_kwargs = {
        **(getattr(args, "apply_chat_template_kwargs", None) or {}),
        **(getattr(sample, "apply_chat_template_kwargs", None) or {}),
    }
    url = f"http://{args.sglang_router_ip}:{args.sglang_router_port}/generate"
    headers = None
    if sample.session_id and getattr(args, "router_policy", None) == "consistent_hashing":
        headers = {"X-SMG-Routing-Key": sample.session_id}

    async def call_model(input_ids: list[int], params: dict[str, Any]) -> Mapping[str, Any]:
        payload = {"input_ids": input_ids, "sampling_params": params, "return_logprob": True}
        if getattr(args, "use_rollout_routing_replay", False):
            payload["return_routed_experts"] = True  # as slime's default generate does
        return await post(url, payload, headers=headers)

    context_len = getattr(args, "eval_max_context_len" if evaluation else "rollout_max_context_len", None)
    limits = episode_limits(config, int(sampling_params["max_new_tokens"]), context_len)
    sample = await run_episode(
        sample,
        args=args,
        renderer=_renderer(state.tokenizer, template_kwargs),
        generate=call_model,
        env=env,
        limits=limits,
        sampling_params=sampling_params,
        tools=metadata.get("tools"),
        aborted=lambda: state.aborted,
    )
    key = getattr(args, "eval_reward_key" if evaluation else "reward_key", None) or getattr(args, "reward_key", None)
    if sample.status == Sample.Status.ABORTED and key:
        sample.reward = {key: sample.reward}  # get_reward_value indexes the reward by --reward-key
    return sample
