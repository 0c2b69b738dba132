"""Scorers of generated samples, behind one small contract, and the registry other packages plug into.

A scorer has a ``name``, a ``version`` (written into every sample it scores, so a re-score with a new
version is visible), ``inline`` (True: cheap enough to run while generating; False: run after generation
and by ``eval score``), ``async score(requests) -> list[Result]`` and ``async aclose()``. A factory builds
it from the run's `ScorerSettings` and the benchmark's ``scorer_options``; a factory that cannot work here
(a missing module, no judge URL, a domain without a verifier) raises `UnavailableError`, and the
benchmark's samples stay pending (``reward: null``), never 0.

Registered (`SCORERS`, name -> dotted path of the factory):
- ``reward``: `m2rl_slime.rewards` (the training reward router; pooled verifiers run in its worker pool,
  never in the event-loop thread);
- ``hle_judge``: an LLM judge over an OpenAI-compatible server (`judge.py`);
- ``command``: any program reading request lines on stdin and writing result lines on stdout, e.g. a
  reference checker in its own virtual environment (``scorer_options: {argv: [...], version: ...}``);
- ``bfcl``: BFCL's checkers: the AST checker for single-turn rows, bfcl-eval's multi-turn checker (in its
  isolated venv) for episodes (`bfcl_driver`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError, UnavailableError, UnknownNameError
from ..result import bounded
from ..rewards.mcq import prompt_text
from ..rewards.result import Result

logger = logging.getLogger(__name__)

SCORERS: dict[str, str] = {
    "reward": "m2rl_slime.eval.scorers.make_reward_scorer",
    "hle_judge": "m2rl_slime.eval.judge.make_judge_scorer",
    "command": "m2rl_slime.eval.scorers.make_command_scorer",
    "bfcl": "m2rl_slime.eval.bfcl_driver.make_scorer",
}
_DETAIL_CHARS, _DETAIL_ITEMS = 2000, 50


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """One sample to score. `metadata` already carries the suite's domain; `messages` is the whole
    conversation of a multi-turn sample and `episode` its driver's record (None for single-turn)."""

    benchmark: str
    uid: str
    sample_idx: int
    domain: str | None
    response: str
    label: Any
    metadata: Mapping[str, Any]
    prompt: Any = None
    messages: list[Any] | None = None
    episode: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class ScorerSettings:
    """Settings every scorer factory receives (from the command line).

    Attributes:
        reward: ``m2rl_reward`` settings of the reward scorer (the suite's ``reward`` section).
        workers: Verifier worker processes of the reward scorer (0: its default).
        judge_url / judge_model / judge_concurrency / judge_retries: The HLE judge's server, model, requests
            in flight and retries of a failed request.
        bfcl_venv: The virtual environment holding BFCL's reference checker.
    """

    reward: Mapping[str, Any] = field(default_factory=dict)
    workers: int = 0
    judge_url: str | None = None
    judge_model: str | None = None
    judge_concurrency: int = 16
    judge_retries: int = 4
    bfcl_venv: str | None = None


class Scorer(Protocol):
    name: str
    version: str
    inline: bool

    async def score(self, requests: Sequence[ScoreRequest]) -> list[Result]: ...

    async def aclose(self) -> None: ...


def make_scorer(name: str, settings: ScorerSettings, options: Mapping[str, Any]) -> Scorer:
    """Build the registered scorer `name`.

    Raises:
        UnknownNameError: `name` is not registered.
        UnavailableError: it cannot run here (the message says why and how to fix it).
    """
    if name not in SCORERS:
        raise UnknownNameError("scorer", name, SCORERS)
    module_path, _, attr = SCORERS[name].rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_path), attr)
    except ModuleNotFoundError as exc:
        raise UnavailableError(f"scorer {name!r} needs {module_path}, which is not installed ({exc})") from None
    return factory(settings, options)


def trim(value: Any) -> Any:
    """A JSON-safe, bounded copy of verifier details for eval records (longer than the rollout logs')."""
    return bounded(value, chars=_DETAIL_CHARS, items=_DETAIL_ITEMS)


class RewardScorer:
    """The training reward router as a scorer (``m2rl_slime.rewards``)."""

    name = "reward"
    inline = True

    def __init__(self, settings: ScorerSettings, domain: str):
        from .. import __version__

        self.version = f"m2rl_slime.rewards {__version__}"
        self._router = _router(settings)
        self._domain = domain

    async def score(self, requests: Sequence[ScoreRequest]) -> list[Result]:
        from ..rewards.router import Item

        async def one(request: ScoreRequest) -> Result:
            metadata = dict(request.metadata)
            if "prompt_text" not in metadata and (text := prompt_text(request.prompt)):
                metadata["prompt_text"] = text
            return await self._router.ascore(Item(request.domain or self._domain, request.response, request.label, metadata))  # fmt: skip

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def aclose(self) -> None:
        return None


_ROUTERS: dict[str, Any] = {}


def _router(settings: ScorerSettings) -> Any:
    """One reward router (one verifier pool, one sandbox client) per reward settings in this process."""
    from ..rewards.config import RewardConfig
    from ..rewards.router import Router

    reward = dict(settings.reward)
    if settings.workers:
        reward["workers"] = settings.workers
    key = json.dumps(reward, sort_keys=True, default=str)
    if key not in _ROUTERS:
        _ROUTERS[key] = Router(RewardConfig.from_mapping(reward, "suite reward settings"))
    return _ROUTERS[key]


def make_reward_scorer(settings: ScorerSettings, options: Mapping[str, Any]) -> RewardScorer:
    """Factory of ``reward``; ``options["domain"]`` is the benchmark's domain."""
    from ..rewards.registry import canonical_domain

    domain = options.get("domain")
    if not domain:
        raise ConfigError("scorer reward needs the benchmark's domain (set `domain:` in the suite)")
    try:
        canonical_domain(domain)
    except UnknownNameError as exc:
        raise UnavailableError(f"domain {domain!r} has no verifier in this installation ({exc})") from None
    return RewardScorer(settings, domain)


class CommandScorer:
    """Scores a batch by running a program: request lines (`ScoreRequest.to_json`) on stdin, one result
    line ``{"score": float, "reason": str, "details": {...}}`` per request on stdout, in order. The program
    runs with a minimal environment (PATH, HOME, LANG and the ``env`` option) and a deadline per batch."""

    name = "command"
    inline = False

    def __init__(self, argv: Sequence[str], version: str, timeout_s: float, env: Mapping[str, str]):
        self.argv, self.version, self.timeout_s = list(argv), version, timeout_s
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        self.env = {**base, **{str(k): str(v) for k, v in env.items()}}

    async def score(self, requests: Sequence[ScoreRequest]) -> list[Result]:
        payload = "".join(json.dumps(r.to_json(), ensure_ascii=False, default=str) + "\n" for r in requests)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise UnavailableError(f"scorer command {self.argv[0]!r} cannot start: {exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(payload.encode()), self.timeout_s)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise UnavailableError(f"scorer command {self.argv[0]!r} ran past {self.timeout_s:.0f} s") from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace")[-500:]
            raise UnavailableError(f"scorer command {self.argv[0]!r} exited {proc.returncode}: {tail}")
        lines = [line for line in out.decode("utf-8", errors="replace").splitlines() if line.strip()]
        if len(lines) != len(requests):
            raise UnavailableError(
                f"scorer command {self.argv[0]!r} wrote {len(lines)} result lines for {len(requests)} requests"
            )
        results = []
        for line in lines:
            try:
                results.append(Result.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise UnavailableError(f"scorer command {self.argv[0]!r}: bad result line {line[:200]!r}: {exc}")
        return results

    async def aclose(self) -> None:
        return None


def make_command_scorer(settings: ScorerSettings, options: Mapping[str, Any]) -> CommandScorer:
    """Factory of ``command``: options ``argv`` (list, required), ``version``, ``timeout_s``, ``env``."""
    argv = options.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ConfigError("scorer command needs scorer_options.argv, a non-empty list of strings")
    timeout = float(options.get("timeout_s", 3600))
    return CommandScorer(argv, str(options.get("version") or f"command {argv[0]}"), timeout, options.get("env") or {})
