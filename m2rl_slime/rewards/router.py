"""The domain router: one (domain, response, label, metadata) -> `Result`, for the slime hook and offline use.

How a domain is run comes from its `DomainSpec` (`m2rl_slime.domains`). Graded-text domains (math,
science, if, code) first go through the `</think>` policy and a length cap. Pooled verifiers (math,
science, if, agent) run in the shared `VerifierPool` under a hard deadline; the others (code) are awaited
directly (code awaits a sandbox). Nothing here raises for bad *data*: a malformed label or response becomes
a 0 with a reason. An unknown domain or missing settings are configuration errors and raise; with
`raise_on_error=True` (offline use, tests) a verifier's own exception is raised instead of `internal_error`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..domains import SPECS, DomainSpec, get_spec
from ..errors import ConfigError, SandboxError
from .config import RewardConfig
from .pool import Task, VerifierPool, shared_pool
from .registry import verifier_at
from .result import Reason, Result
from .thinking import final_segment

logger = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    if name == "TEXT_DOMAINS":  # a view of the registry, kept for callers of earlier versions
        return frozenset(n for n, spec in SPECS.items() if spec.graded_text)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def warm_domains() -> tuple[str, ...]:
    """The pooled domains with a warm-up item: each pool worker verifies one of each before serving."""
    return tuple(name for name, spec in SPECS.items() if spec.pooled and spec.warm_up is not None)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to score. `domain` may be an alias; `metadata` is never mutated."""

    domain: str
    response: Any
    label: Any = None
    metadata: Mapping[str, Any] | None = None


def _as_text(response: Any) -> str | None:
    if isinstance(response, str):
        return response
    if isinstance(response, (bytes, bytearray)):
        return bytes(response).decode("utf-8", errors="replace")
    return None


class Router:
    """Scores items with the verifiers of their domains.

    Args:
        config: The `m2rl_reward` settings.
        agent_config: The `m2rl_agent` settings (the agent verifier's config), or None.
    """

    def __init__(self, config: RewardConfig | None = None, agent_config: Any = None):
        self.config = config or RewardConfig()
        self.agent_config = agent_config
        self._sections = {"m2rl_agent": agent_config}  # plugin sections a DomainSpec.settings_key may name
        self._pool: VerifierPool | None = None
        self._pool_lock = threading.Lock()

    @property
    def pool(self) -> VerifierPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = shared_pool(
                    self.config.pool_workers, warm=warm_domains(), memory_mb=self.config.worker_memory_mb
                )
            return self._pool

    def _verifier_config(self, spec: DomainSpec) -> Any:
        if spec.settings_key is None:
            return self.config.for_domain(spec.name)
        config = self._sections.get(spec.settings_key)
        if config is None:
            raise ConfigError(
                f"an {spec.name}-domain sample needs the {spec.settings_key} settings ({spec.settings_help}); add "
                "them to the recipe's plugin section or the --custom-config-path YAML"
            )
        return config

    def _prepare(self, item: Item) -> tuple[DomainSpec, str | None, Result | None]:
        """Resolve the domain and the graded text; return an early `Result` when there is nothing to grade."""
        spec = get_spec(item.domain)
        text = _as_text(item.response)
        if text is None:
            return spec, None, Result.fail(Reason.EMPTY_RESPONSE, error=f"response is {type(item.response).__name__}")
        if spec.graded_text:
            text, reason = final_segment(text, require_thinking=self.config.require_thinking)
            if reason is not None:
                return spec, None, Result.fail(reason)
            if len(text) > self.config.max_response_chars:
                return (
                    spec,
                    None,
                    Result.fail(
                        Reason.PARSE_ERROR,
                        error=f"graded text has {len(text)} chars, above max_response_chars={self.config.max_response_chars}",
                    ),
                )
        return spec, text, None

    async def ascore(self, item: Item, *, raise_on_error: bool = False) -> Result:
        """Score one item (async).

        Args:
            item: What to score.
            raise_on_error: Raise what the verifier raised instead of returning `internal_error` (for
                offline use and tests; timeouts, worker crashes and sandbox failures stay verdicts).

        Raises:
            ConfigError: an unknown domain, missing settings, or a verifier reporting a settings problem.
        """
        spec, text, early = self._prepare(item)
        if early is not None:
            return early
        metadata = dict(item.metadata) if isinstance(item.metadata, Mapping) else {}
        config = self._verifier_config(spec)
        if spec.pooled:
            task = Task(spec.name, text, item.label, metadata, config, spec.verifier, raise_on_error)
            try:
                return await asyncio.wrap_future(self.pool.submit(task, self.config.deadline_s))
            except ConfigError as exc:
                raise ConfigError(f"{spec.name} verifier: {exc}") from None
        verify = verifier_at(spec.verifier)
        try:
            return await verify(text, item.label, metadata, config=config)
        except ConfigError:
            raise
        except SandboxError as exc:
            return Result.fail(Reason.SANDBOX_ERROR, error=str(exc)[:500])
        except Exception as exc:  # boundary: a verifier bug must not kill the rollout loop
            if raise_on_error:
                raise
            logger.exception("verifier for domain %r raised", spec.name)
            return Result.fail(Reason.INTERNAL_ERROR, error=f"{type(exc).__name__}: {exc}"[:500])

    def score_many(
        self, items: Iterable[Item], *, progress: bool = False, raise_on_error: bool = False
    ) -> list[Result]:
        """Score many items concurrently from synchronous code (uses a private event-loop thread)."""
        items = list(items)

        async def run() -> list[Result]:
            tasks = [asyncio.ensure_future(self.ascore(item, raise_on_error=raise_on_error)) for item in items]
            if progress and len(tasks) > 1:
                from tqdm import tqdm

                with tqdm(total=len(tasks), desc="scoring", unit="rollout") as bar:
                    for task in tasks:
                        task.add_done_callback(lambda _t: bar.update(1))
                    return list(await asyncio.gather(*tasks))
            return list(await asyncio.gather(*tasks))

        return _loop_thread().run(run())

    def score(self, item: Item, *, raise_on_error: bool = False) -> Result:
        """Score one item from synchronous code."""
        return self.score_many([item], raise_on_error=raise_on_error)[0]


class _LoopThread:
    """A daemon thread running an event loop, so sync callers work with or without a running loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="m2rl-reward-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        if threading.current_thread() is self.thread:
            raise RuntimeError("Router sync API called from its own event loop; use `await router.ascore(...)`")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_loop: _LoopThread | None = None
_loop_lock = threading.Lock()


def _loop_thread() -> _LoopThread:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = _LoopThread()
        return _loop


_routers: dict[int, tuple[Any, Router]] = {}


def router_for(config: RewardConfig | None = None, agent_config: Any = None) -> Router:
    """A process-wide `Router` per config object (so the pool and sandbox clients are shared)."""
    key = hash((id(config), id(agent_config)))
    entry = _routers.get(key)
    if entry is None or entry[0] != (config, agent_config):
        entry = ((config, agent_config), Router(config, agent_config))
        _routers[key] = entry
    return entry[1]


def score(
    domain: str,
    response: Any,
    label: Any = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    config: RewardConfig | None = None,
    agent_config: Any = None,
    raise_on_error: bool = False,
) -> Result:
    """Score one response offline, exactly as the slime hook would (synchronous).

    Args:
        domain: A canonical domain (math, code, science, if, agent) or an alias (deepscaler, gpqa, ...).
        response: The full model response, thinking included.
        label: The row's label.
        metadata: The row's metadata (never mutated).
        config: Reward settings (defaults: thinking required, as in the paper).
        agent_config: `m2rl_agent` settings, needed for the agent domain.
        raise_on_error: Raise what the verifier raised instead of scoring 0 with reason `internal_error`
            (timeouts, worker crashes and sandbox failures are still verdicts).

    Returns:
        The verifier's `Result`.

    Raises:
        UnknownNameError: `domain` is not a known domain or alias.
        ConfigError: settings the domain needs are missing or invalid.

    Example:
        >>> score("math", "</think>The answer is \\boxed{4}.", "4").reason.value  # doctest: +SKIP
        'ok'
    """
    item = Item(domain, response, label, metadata)
    return router_for(config, agent_config).score(item, raise_on_error=raise_on_error)
