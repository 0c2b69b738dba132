"""The prepared rows of one benchmark, as the runner needs them: a stable uid per item, the prompt and
tools, the label and metadata, and the prompt's hash."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.files import iter_rows
from ..errors import ConfigError
from .identity import prompt_sha
from .suite import Benchmark, benchmark_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One prepared row. `metadata` carries the suite's domain (it overrides the row's)."""

    uid: str
    prompt: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    label: Any
    metadata: Mapping[str, Any]
    prompt_sha: str
    row: Mapping[str, Any]


def load_items(bench: Benchmark, data_dir: str | Path) -> list[EvalItem]:
    """Read `bench`'s prepared file (its first `limit` rows when the suite says so).

    Raises:
        ConfigError: an unreadable line, a row without a chat prompt or ``metadata.uid``, or a repeated uid
            (each named by file:line).
    """
    path = benchmark_path(bench, data_dir)
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for line_no, raw, error in iter_rows(path):
        if bench.limit is not None and len(items) >= bench.limit:
            break
        where = f"{path}:{line_no}"
        if error is not None:
            raise ConfigError(f"{where}: {error}")
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: a prepared row is a JSON object with prompt, label, metadata, tools")
        prompt, metadata = raw.get("prompt"), raw.get("metadata")
        if not isinstance(prompt, list) or not all(isinstance(m, Mapping) for m in prompt):
            raise ConfigError(f"{where}: prompt must be a list of chat messages (prepare it with prepare-eval)")
        if not isinstance(metadata, Mapping) or metadata.get("uid") in (None, ""):
            raise ConfigError(f"{where}: the row has no metadata.uid; prepare the file with prepare-eval")
        uid = str(metadata["uid"])
        if uid in seen:
            raise ConfigError(f"{where}: uid {uid!r} repeats line {seen[uid]}; every item needs its own uid")
        seen[uid] = line_no
        tools = raw.get("tools") or []
        if not isinstance(tools, list):
            raise ConfigError(f"{where}: tools must be a list of tool schemas")
        view = dict(metadata)
        if bench.domain:
            view["domain"] = bench.domain
        items.append(EvalItem(uid, list(prompt), tools, raw.get("label"), view, prompt_sha(prompt, tools), raw))
    if not items:
        raise ConfigError(f"{path}: no rows")
    if bench.n is not None and bench.limit is None and len(items) != bench.n:
        logger.warning("benchmark %s: %s has %d items, the protocol expects %d", bench.name, path, len(items), bench.n)
    return items
