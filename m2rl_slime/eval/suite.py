"""Benchmark suites: which prepared files to evaluate, with how many samples, how sampled and how scored.

A suite is a YAML file (``recipes/eval/<name>.yaml``)::

    name: paper9
    description: ...
    seed: 0                       # base of the per-sample seeds
    reward: {require_thinking: true}   # m2rl_reward settings of the reward scorer (and of the slime run)
    defaults: {temperature: 1.0, top_p: 0.7, max_tokens: 32768, scorer: reward}
    benchmarks:
      - name: aime24              # the key of its samples (benchmark, uid, sample_idx)
        title: "AIME'24"          # column/row title of the reports
        file: aime24.jsonl        # prepared rows, relative to the eval data directory
        domain: math              # the reward router's domain (overrides the rows' metadata.domain)
        k: 64                     # samples per item: the score is Avg@k
        n: 30                     # the item count the protocol expects (a mismatch is reported)
        subset: AIME 2024         # which items: a release, a date window, a subset (printed with scores)

Every key of ``defaults`` may be set per benchmark. Sampling is always explicit (temperature, top_p,
max_tokens), so neither slime's fallback to ``--rollout-temperature`` nor a server's
``generation_config.json`` can change it silently. The domain of each benchmark lives here, not in code.
Nothing here touches the network; `availability` is the only function that looks at the file system.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from ..config import parse_dataclass
from ..errors import ConfigError, UnknownNameError

SUITE_KEYS = ("name", "description", "seed", "reward", "defaults", "benchmarks")
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "max_tokens", "stop_token_ids", "chat_template_kwargs")
DEFAULT_KEYS = (*SAMPLING_KEYS, "scorer", "scorer_options", "api")


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings of one benchmark, sent explicitly with every request."""

    temperature: float
    top_p: float
    max_tokens: int
    top_k: int = -1
    stop_token_ids: tuple[int, ...] = ()
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.top_k != -1:
            out["top_k"] = self.top_k
        if self.stop_token_ids:
            out["stop_token_ids"] = list(self.stop_token_ids)
        if self.chat_template_kwargs:
            out["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return out


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One benchmark of a suite (see the module docstring for the keys).

    Attributes:
        driver: Episode driver (`drivers.DRIVERS`) for multi-turn rows; None: single-turn.
        driver_categories: Rows whose ``metadata.category`` is listed use the driver (empty: every row).
        generate: ``agent``: in a slime run, the rows go through ``m2rl_slime.agent.generate``.
        api: ``chat`` (``/v1/chat/completions``) or ``generate`` (SGLang ``/generate``, templated here);
            None: the run's ``--api``.
        limit: Evaluate only the first `limit` rows of the file (smoke suites).
    """

    name: str
    file: str
    k: int
    sampling: Sampling
    title: str = ""
    domain: str | None = None
    scorer: str = "reward"
    scorer_options: dict[str, Any] = field(default_factory=dict)
    n: int | None = None
    limit: int | None = None
    subset: str | None = None
    driver: str | None = None
    driver_categories: tuple[str, ...] = ()
    generate: Literal["agent"] | None = None
    api: Literal["chat", "generate"] | None = None

    def validate(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"benchmark name {self.name!r} must be letters, digits, _ or -")
        if self.k < 1:
            raise ConfigError(f"{self.name}: k must be >= 1, got {self.k}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"{self.name}: limit must be >= 1, got {self.limit}")

    @property
    def label(self) -> str:
        return self.title or self.name

    def protocol(self) -> dict[str, Any]:
        """What every printed score of this benchmark carries: K, sampling, scorer, item set."""
        out: dict[str, Any] = {"k": self.k, "sampling": self.sampling.to_dict(), "scorer": self.scorer}
        if self.subset:
            out["subset"] = self.subset
        if self.limit:
            out["limit"] = self.limit
        return out


@dataclass(frozen=True, slots=True)
class Suite:
    """A loaded suite."""

    name: str
    benchmarks: tuple[Benchmark, ...]
    description: str = ""
    seed: int = 0
    reward: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha: str = ""

    def get(self, name: str) -> Benchmark:
        for bench in self.benchmarks:
            if bench.name == name:
                return bench
        raise UnknownNameError(f"benchmark of suite {self.name}", name, [b.name for b in self.benchmarks])

    def select(self, only: Sequence[str] = ()) -> Suite:
        """The suite restricted to the named benchmarks (in suite order)."""
        if not only:
            return self
        for name in only:
            self.get(name)
        return replace(self, benchmarks=tuple(b for b in self.benchmarks if b.name in set(only)))


def suites_dir() -> Path:
    """``$M2RL_RECIPES_DIR/eval``, else ``recipes/eval`` of the source checkout."""
    from ..launch.recipe import default_recipes_dir

    return default_recipes_dir() / "eval"


def find_suite(ref: str | Path) -> Path:
    """A suite file from a path or a name (``paper9`` -> ``recipes/eval/paper9.yaml``)."""
    path = Path(ref)
    if path.is_file():
        return path
    candidate = suites_dir() / f"{ref}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in suites_dir().glob("*.yaml")) if suites_dir().is_dir() else []
    raise ConfigError(f"suite {ref!s} not found (no such file, nor {candidate}); known suites: {', '.join(known)}")


def parse_suite(raw: Any, where: str, path: Path | None = None) -> Suite:
    """Validate a decoded suite mapping (see the module docstring).

    Raises:
        ConfigError: naming the key (``<file>: benchmarks[2].k``) for any invalid input.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a suite must be a mapping with name and benchmarks")
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SUITE_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: name must be a non-empty string")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"{where}: defaults must be a mapping")
    bad = sorted(set(defaults) - set(DEFAULT_KEYS))
    if bad:
        raise ConfigError(f"{where}: defaults: unknown key(s) {', '.join(bad)}; valid: {', '.join(DEFAULT_KEYS)}")
    entries = raw.get("benchmarks")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: benchmarks must be a non-empty list")
    benchmarks = tuple(_benchmark(entry, defaults, f"{where}: benchmarks[{i}]") for i, entry in enumerate(entries))
    names = [b.name for b in benchmarks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: benchmark names must be unique; repeated: {', '.join(dupes)}")
    reward = raw.get("reward") or {}
    if not isinstance(reward, Mapping):
        raise ConfigError(f"{where}: reward must be a mapping of m2rl_reward settings")
    from ..rewards.config import RewardConfig

    RewardConfig.from_mapping(reward, f"{where}: reward")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
    sha = hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
    description = str(raw.get("description") or "")
    return Suite(name, benchmarks, description, seed, dict(reward), path, sha)


def _benchmark(entry: Any, defaults: Mapping[str, Any], where: str) -> Benchmark:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with at least name, file and k")
    merged = {**defaults, **entry}
    sampling_raw = {k: merged.pop(k) for k in SAMPLING_KEYS if k in merged}
    missing = [k for k in ("temperature", "top_p", "max_tokens") if k not in sampling_raw]
    if missing:
        raise ConfigError(f"{where}: sampling must be explicit; set {', '.join(missing)} here or in defaults")
    sampling = parse_dataclass(Sampling, sampling_raw, where)
    return parse_dataclass(Benchmark, {**merged, "sampling": sampling}, where)


def load_suite(ref: str | Path, only: Sequence[str] = ()) -> Suite:
    """Load a suite by name or path, optionally restricted to some benchmarks.

    Raises:
        ConfigError: not found, unreadable, invalid (naming the key), or an unknown name in `only`.
    """
    path = find_suite(ref)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read suite: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_suite(raw, str(path), path).select(only)


def benchmark_path(bench: Benchmark, data_dir: str | Path) -> Path:
    """The prepared file of `bench` (absolute paths and ``~`` are kept; others are under `data_dir`)."""
    file = Path(os.path.expanduser(bench.file))
    return file if file.is_absolute() else Path(data_dir) / file


@dataclass(frozen=True, slots=True)
class Availability:
    """Which benchmarks of a suite can run: `ready` have their prepared file; `missing` maps the others to
    one line saying why (the file that is not there and how to build it)."""

    ready: tuple[Benchmark, ...]
    missing: Mapping[str, str]


def availability(suite: Suite, data_dir: str | Path) -> Availability:
    """Split the suite into benchmarks whose prepared rows exist and those a user has not built."""
    ready, missing = [], {}
    for bench in suite.benchmarks:
        path = benchmark_path(bench, data_dir)
        if path.is_file():
            ready.append(bench)
        else:
            missing[bench.name] = (
                f"{path} does not exist: build it with `python -m m2rl_slime.data prepare-eval --out {path} ...` "
                "(docs/eval_sets.md)"
            )
    return Availability(tuple(ready), missing)
