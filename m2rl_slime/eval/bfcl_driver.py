"""BFCL v3 in the evaluation runner: the ``bfcl_multi_turn`` episode driver and the ``bfcl`` scorer.

Not a slime hook. Glue between `m2rl_slime.eval.bfcl` (its episodes, bridge and verifier) and the runner's
interfaces (`drivers`, `scorers`):

- `open_bridge` starts one `bfcl.Bridge` per run in the isolated bfcl-eval venv (``--bfcl-venv`` or
  ``$M2RL_BFCL_ENV``; ``python -m m2rl_slime.eval bfcl-env DIR`` creates it); without one, the multi-turn
  rows are reported as not run (`UnavailableError`), never scored 0;
- `run_episode` plays one multi-turn row (`bfcl.run_episode`) and returns the conversation, the decoded
  calls and the episode's verdict, which the runner writes as the sample's score;
- `make_scorer` scores single-turn rows with the reward router (domain ``bfcl``, the AST checker) and
  re-scores multi-turn samples from their saved decoded calls with bfcl-eval's checker (``eval score``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ..errors import UnavailableError
from ..rewards.result import Result
from .scorers import ScoreRequest, ScorerSettings, make_reward_scorer

VERSION = "m2rl_slime.eval.bfcl 1"
_EPISODE_KEYS = ("decoded", "force_terminated", "steps")


@contextlib.asynccontextmanager
async def open_bridge(settings: Mapping[str, Any]) -> AsyncIterator[Any]:
    """The run's bridge (see the module docstring)."""
    from .bfcl.bridge import Bridge, BridgeError

    bridge = Bridge(settings.get("bfcl_venv"))
    try:
        await bridge.start()
    except BridgeError as exc:
        raise UnavailableError(f"BFCL multi-turn needs the bfcl-eval environment: {exc}") from None
    try:
        yield bridge
    finally:
        await bridge.close()


async def run_episode(chat: Any, row: Mapping[str, Any], bridge: Any) -> dict[str, Any]:
    """One multi-turn row: ``messages``, ``response``, the decoded calls, and ``result`` (the verdict).

    Raises:
        UnavailableError: the bridge failed (infrastructure; the sample is not written and is re-run).
    """
    from .bfcl.bridge import BridgeError
    from .bfcl.episode import run_episode as play

    try:
        record = await play(chat, row, bridge)
    except BridgeError as exc:
        raise UnavailableError(f"BFCL bridge: {exc}") from None
    result: Result = record["result"]
    return {
        "messages": record["messages"],
        "response": record["response"],
        **{key: record[key] for key in _EPISODE_KEYS},
        "result": result.to_dict(),
        "scorer_version": VERSION,
    }


class BfclScorer:
    """Single-turn rows: the reward router (AST checker); multi-turn samples: bfcl-eval's checker on the
    saved decoded calls, through a bridge started on first need."""

    name = "bfcl"
    inline = True
    version = VERSION

    def __init__(self, settings: ScorerSettings):
        self._single = make_reward_scorer(settings, {"domain": "bfcl"})
        self._venv = settings.bfcl_venv
        self._bridge: Any = None

    async def _multi(self, request: ScoreRequest) -> Result:
        from .bfcl.bridge import Bridge, BridgeError
        from .bfcl.episode import score_decoded

        episode = request.episode or {}
        try:
            if self._bridge is None:
                self._bridge = Bridge(self._venv)
                await self._bridge.start()
            return await score_decoded(request.metadata, episode["decoded"], self._bridge,
                                       force_terminated=bool(episode.get("force_terminated")))  # fmt: skip
        except BridgeError as exc:
            raise UnavailableError(f"BFCL bridge: {exc}") from None

    async def score(self, requests: Sequence[ScoreRequest]) -> list[Result]:
        results: dict[int, Result] = {}
        single = [(i, r) for i, r in enumerate(requests) if not (r.episode or {}).get("decoded")]
        if single:
            done = await self._single.score([r for _, r in single])
            results.update({i: res for (i, _), res in zip(single, done, strict=True)})
        for i, request in enumerate(requests):
            if i not in results:
                results[i] = await self._multi(request)
        return [results[i] for i in range(len(requests))]

    async def aclose(self) -> None:
        if self._bridge is not None:
            await self._bridge.close()
            self._bridge = None


def make_scorer(settings: ScorerSettings, options: Mapping[str, Any]) -> BfclScorer:
    """Factory of the ``bfcl`` scorer.

    Raises:
        UnavailableError: the reward router has no ``bfcl`` domain.
    """
    return BfclScorer(settings)
