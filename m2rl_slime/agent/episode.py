"""One multi-turn tool-calling episode, token in / token out, written against slime's `Sample` contract.

This module does not import slime: it takes the sample (anything with slime's `Sample` attributes,
`Sample.Status` and `append_response_tokens`), a `generate(input_ids, sampling_params)` coroutine that
returns SGLang's `/generate` JSON, a `ChatRenderer` and an environment session. `slime_hooks.py` wires
in slime's tokenizer, router URL and HTTP client.

Per turn: generate from exactly `sample.tokens`; append the generated ids as trainable with their
log-probs (`meta_info` sets the status from SGLang's finish reason); parse `<tool_call>` blocks; execute
them; append the exact template delta of the tool turn plus the next generation header as non-trainable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .config import AgentConfig
from .env import StepResult, ToolCall, WorkplaceEnv, allowed_tools, tool_error
from .parsing import Malformed, parse_turn
from .tables import WorkplaceDB, load_db
from .template import ChatRenderer
from .verifier import RECORD_KEY

logger = logging.getLogger(__name__)

GenerateFn = Callable[[list[int], dict[str, Any]], Awaitable[Mapping[str, Any]]]
AbortedFn = Callable[[], bool]
"""``aborted() -> bool``: True once the rollout has been aborted (slime's ``GenerateState.aborted``)."""


class EpisodeEnv(Protocol):
    """An environment session for one episode (in-process, or a remote NeMo-Gym-style server)."""

    async def start(self) -> None: ...

    async def call(self, call: ToolCall) -> StepResult: ...

    async def close(self) -> None: ...


class LocalEpisodeEnv:
    """The in-process environment: a fresh copy-on-write state per episode."""

    def __init__(self, db: WorkplaceDB, allowed: frozenset[str] | None = None) -> None:
        self.env = WorkplaceEnv(db, allowed)

    async def start(self) -> None:
        self.env.reset()

    async def call(self, call: ToolCall) -> StepResult:
        return self.env.step(call)

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one episode.

    Attributes:
        max_turns: Model turns.
        max_response_tokens: Response-side tokens (model and tool tokens together).
        max_total_tokens: Prompt + response tokens, or None.
        max_calls_per_turn: Calls executed per turn.
        max_tool_output_chars: Cut longer tool outputs, or None.
    """

    max_turns: int
    max_response_tokens: int
    max_total_tokens: int | None = None
    max_calls_per_turn: int = 16
    max_tool_output_chars: int | None = None


def episode_env(config: AgentConfig, tools: Any) -> EpisodeEnv:
    """The environment session for one episode: remote when `env_url` is set, else in-process.

    Raises:
        ConfigError: `csv_dir` is unset (it is needed to score the episode even with a remote environment).
    """
    csv_dir = config.require_csv_dir()
    allowed = allowed_tools(tools)
    if config.env_url is not None:
        from .remote import RemoteEpisodeEnv, shared_client

        return RemoteEpisodeEnv(shared_client(config.env_url, config.env_timeout_s, config.env_retries), allowed)
    return LocalEpisodeEnv(load_db(csv_dir), allowed)


def episode_limits(config: AgentConfig, max_new_tokens: int, context_len: int | None = None) -> Limits:
    """Bounds from the settings and slime's per-sample `max_new_tokens` (never raised by the settings)."""
    response = (
        max_new_tokens if config.max_response_tokens is None else min(max_new_tokens, config.max_response_tokens)
    )
    return Limits(
        max_turns=config.max_turns,
        max_response_tokens=response,
        max_total_tokens=config.max_context_tokens or context_len,
        max_calls_per_turn=config.max_calls_per_turn,
        max_tool_output_chars=config.max_tool_output_chars,
    )


def _reset(sample: Any) -> None:
    """Clear response state (retried or aborted samples arrive with stale state)."""
    sample.response = ""
    sample.response_length = 0
    sample.loss_mask = None
    sample.rollout_log_probs = None
    sample.reward = None
    sample.remove_sample = False
    for name in (
        "rollout_top_p_token_ids",
        "rollout_top_p_token_offsets",
        "rollout_routed_experts",
        "teacher_log_probs",
    ):
        if hasattr(sample, name):
            setattr(sample, name, None)
    sample.status = type(sample).Status.PENDING


def _room(sample: Any, limits: Limits) -> int:
    room = limits.max_response_tokens - sample.response_length
    if limits.max_total_tokens is not None:
        room = min(room, limits.max_total_tokens - len(sample.tokens))
    return room


def _model_tokens(output: Mapping[str, Any]) -> tuple[list[int], list[float], dict[str, Any]]:
    meta = output.get("meta_info")
    if not isinstance(meta, Mapping):
        raise TypeError("SGLang response has no meta_info")
    pairs = meta.get("output_token_logprobs") or []
    return [int(p[1]) for p in pairs], [float(p[0]) for p in pairs], dict(meta)


async def _execute(env: EpisodeEnv, items: list[ToolCall | Malformed], limits: Limits, record: dict) -> list[dict]:
    """Run a turn's calls in order; return the tool messages the model will see."""
    messages = []
    executed = 0
    for item in items:
        if isinstance(item, Malformed):
            record["malformed_calls"] += 1
            name, result = (
                "invalid_tool_call",
                StepResult(f"Error: could not parse the tool call: {item.reason}", False),
            )
        elif executed >= limits.max_calls_per_turn:
            name = item.name
            result = tool_error(item.name, f"not executed: at most {limits.max_calls_per_turn} calls per turn")
        else:
            executed += 1
            name, result = item.name, await env.call(item)
            record["calls"].append(item.to_dict())
        record["tool_errors"] += not result.ok
        messages.append({"role": "tool", "name": name, "content": result.text(limits.max_tool_output_chars)})
    return messages


async def run_episode(
    sample: Any,
    *,
    args: Any,
    renderer: ChatRenderer,
    generate: GenerateFn,
    env: EpisodeEnv,
    limits: Limits,
    sampling_params: Mapping[str, Any],
    tools: Any = None,
    aborted: AbortedFn | None = None,
) -> Any:
    """Run one episode in place on `sample` and return it; `sample.reward` is left None for the reward hook.

    Ends COMPLETED when the model answers without calling a tool; TRUNCATED at the turn limit, when a turn
    hits `max_new_tokens`, or when the token budget cannot hold the next tool turn; ABORTED when SGLang
    aborts, when `aborted()` turns true before a turn (slime aborted the rollout: no new request is sent),
    or when the model server / environment cannot be reached (then `remove_sample` is set and the reward
    is 0.0, see `_exclude`). The executed calls and counters are stored in `sample.metadata["m2rl_agent"]`,
    which the verifier replays.

    Raises:
        M2RLError: the prompt is neither text nor messages, or the chat template cannot render tool turns
            (a setup problem shared by every agent sample).
    """
    status = type(sample).Status
    prompt_ids = renderer.prompt_ids(sample.prompt, tools)
    _reset(sample)
    sample.tokens = list(prompt_ids)
    record: dict[str, Any] = {"calls": [], "turns": 0, "tool_errors": 0, "malformed_calls": 0, "stop": None}
    sample.metadata = {**(sample.metadata or {}), RECORD_KEY: record}
    try:
        await env.start()
    except Exception as exc:  # noqa: BLE001 - boundary: an unreachable environment aborts the episode, never the rollout
        logger.warning("agent environment unavailable: %s", exc)
        record["stop"], sample.status = "env_unavailable", status.ABORTED
        _exclude(sample)
        return sample
    try:
        record["stop"], sample.status = await _loop(
            sample, args, renderer, generate, env, limits, sampling_params, record, aborted
        )
    finally:
        try:
            await env.close()
        except Exception as exc:  # noqa: BLE001 - boundary: a failed session close must not lose the episode
            logger.warning("closing the agent environment session failed: %s", exc)
    if sample.status == status.ABORTED:
        _exclude(sample)
    return sample


def _exclude(sample: Any) -> None:
    """An aborted episode is not graded (slime skips the reward hook) and must not be trained: its loss mask
    is zeroed through `remove_sample`, and it carries a numeric reward only because slime's reward
    post-processing needs one on every sample of the batch. slime takes the per-token fields of the whole
    batch when the first sample has them, so an episode aborted before its first token gets empty lists,
    never None."""
    sample.remove_sample = True
    sample.reward = 0.0
    if sample.rollout_log_probs is None:
        sample.rollout_log_probs = [0.0] * sample.response_length
    if sample.loss_mask is None:
        sample.loss_mask = [0] * sample.response_length


async def _loop(
    sample: Any,
    args: Any,
    renderer: ChatRenderer,
    generate: GenerateFn,
    env: EpisodeEnv,
    limits: Limits,
    sampling_params: Mapping[str, Any],
    record: dict[str, Any],
    aborted: AbortedFn | None = None,
) -> tuple[str, Any]:
    """The turn loop; returns (stop reason, final status)."""
    status = type(sample).Status
    for turn in range(limits.max_turns):
        if aborted is not None and aborted():
            return "aborted", status.ABORTED  # slime's abort() waits for idle servers: send nothing new
        room = _room(sample, limits)
        if room <= 0:
            return "token_budget", status.TRUNCATED
        try:
            output = await generate(list(sample.tokens), {**sampling_params, "max_new_tokens": room})
            ids, log_probs, meta = _model_tokens(output)
        except Exception as exc:  # noqa: BLE001 - boundary: transport or protocol failure of the model server
            logger.warning("agent turn %d: generation failed: %s", turn, exc)
            return "generate_failed", status.ABORTED
        text = output.get("text")
        text = text if isinstance(text, str) else renderer.decode(ids)
        sample.append_response_tokens(args, tokens=ids, log_probs=log_probs, trainable=True, meta_info=meta, text=text)
        record["turns"] += 1
        finish = (meta.get("finish_reason") or {}).get("type")
        if finish == "abort":
            return "aborted", status.ABORTED
        if finish == "length":
            return "max_new_tokens", status.TRUNCATED
        items = parse_turn(text)
        if not items:
            return "answered", status.COMPLETED
        try:
            messages = await _execute(env, items, limits, record)
        except Exception as exc:  # noqa: BLE001 - boundary: the remote environment failed mid-episode
            logger.warning("agent turn %d: environment failed: %s", turn, exc)
            return "env_failed", status.ABORTED
        if turn == limits.max_turns - 1:
            return "turn_limit", status.TRUNCATED
        obs_ids = renderer.observation_ids(messages, ids)
        if len(obs_ids) > _room(sample, limits):
            return "token_budget", status.TRUNCATED
        sample.append_response_tokens(args, tokens=obs_ids, trainable=False, text=renderer.decode(obs_ids))
    return "turn_limit", status.TRUNCATED
