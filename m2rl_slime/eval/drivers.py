"""Episode drivers: how a multi-turn benchmark's row is played against the model.

A suite benchmark names a driver (``driver: bfcl_multi_turn``) and, optionally, the row categories it
applies to (``driver_categories``, matched against ``metadata.category``); other rows of the benchmark
are single-turn. `DRIVERS` maps a driver name to a module that defines::

    async def run_episode(chat: ChatFn, row: Mapping, bridge: Any) -> Mapping
    def open_bridge(settings: Mapping) -> AsyncContextManager[Any]     # optional

`chat(messages, tools) -> assistant message` is bound by the runner to the sample's sampling settings
and seed (`client.bind_chat`); `bridge` is whatever the driver's ``open_bridge`` yields (e.g. a connection
to a tool-execution environment), opened once per run, or None. The returned record must hold
``messages`` (the whole conversation, tool calls kept); it may hold ``response`` (the text to score,
default: the last assistant message's content), ``status``, ``finish_reason`` and anything else, which
is kept in the sample's ``episode`` field.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UnavailableError, UnknownNameError
from .client import ChatFn
from .suite import Benchmark

DRIVERS: dict[str, str] = {
    "bfcl_multi_turn": "m2rl_slime.eval.bfcl",
}

RunEpisode = Callable[[ChatFn, Mapping[str, Any], Any], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Driver:
    """A loaded driver."""

    name: str
    run_episode: RunEpisode
    open_bridge: Callable[[Mapping[str, Any]], Any] | None

    @contextlib.asynccontextmanager
    async def bridge(self, settings: Mapping[str, Any]) -> AsyncIterator[Any]:
        if self.open_bridge is None:
            yield None
            return
        async with self.open_bridge(settings) as bridge:
            yield bridge


def load_driver(name: str) -> Driver:
    """Import the driver `name`.

    Raises:
        UnknownNameError: not in `DRIVERS`.
        UnavailableError: its module is not installed or has no ``run_episode``.
    """
    if name not in DRIVERS:
        raise UnknownNameError("episode driver", name, DRIVERS)
    try:
        module = importlib.import_module(DRIVERS[name])
    except ModuleNotFoundError as exc:
        raise UnavailableError(
            f"episode driver {name!r} needs {DRIVERS[name]}, which is not installed ({exc})"
        ) from None
    run_episode = getattr(module, "run_episode", None)
    if not callable(run_episode):
        raise UnavailableError(f"episode driver {name!r}: {DRIVERS[name]} defines no run_episode")
    return Driver(name, run_episode, getattr(module, "open_bridge", None))


def uses_driver(bench: Benchmark, row: Mapping[str, Any]) -> bool:
    """Whether `row` of `bench` is played by the benchmark's driver."""
    if not bench.driver:
        return False
    if not bench.driver_categories:
        return True
    metadata = row.get("metadata") if isinstance(row.get("metadata"), Mapping) else {}
    return metadata.get("category") in bench.driver_categories


def final_response(record: Mapping[str, Any]) -> str:
    """The text to score of an episode: ``record["response"]``, else the last assistant message's content."""
    if isinstance(record.get("response"), str):
        return record["response"]
    for message in reversed(list(record.get("messages") or [])):
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""
