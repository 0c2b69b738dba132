"""Typed merge configuration: what to merge (`MergeConfig`) and how to run it (`MergeOptions`), plus the
YAML recipe loader (our format, or a mergekit-style file translated by `mergekit_compat`).

Recipe format (``recipes/merge/*.yaml``)::

    method: ties
    base: ${SFT_HF:-checkpoints/sft_hf}        # ${VAR} or ${VAR:-default}, expanded from the environment
    experts:
      math: ${MATH_HF:-checkpoints/rl_math_hf}  # name: path
      code: {path: "${CODE_HF}", weight: 1.0}   # or name: {path, weight} (quote ${} inside braces)
    params: {density: 0.2, trim_scope: model, lambda: 1.0}
    seed: 0
    dtype: bf16
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import parse_dataclass
from ..errors import ConfigError

Dtype = Literal["bf16", "fp16", "fp32"]
Device = Literal["cpu", "cuda"]
Fingerprint = Literal["stat", "content"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# YAML/CLI spellings of parameter fields whose Python name differs.
PARAM_ALIASES = {"lambda": "lam"}


@dataclass(frozen=True, slots=True)
class ExpertSpec:
    """One expert checkpoint: a unique name, an HF safetensors directory and its weight."""

    name: str
    path: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class MergeConfig:
    """What to merge. Everything here is recorded in the manifest and decides the output bytes.

    Attributes:
        method: Name in `METHODS`.
        base: The base (SFT) checkpoint directory; task vectors are relative to it.
        experts: The experts, in order.
        params: Raw method parameters (validated against the method's dataclass by `method_params`).
        seed: DARE seed.
        dtype: Output dtype (computation is always fp32).
        copy_from: Where config/tokenizer files come from: ``base``, an expert name, or a directory.
    """

    method: str
    base: str
    experts: tuple[ExpertSpec, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    dtype: Dtype = "bf16"
    copy_from: str = "base"

    def validate(self) -> None:
        from .methods import get_method

        if not self.experts:
            raise ConfigError("no experts: give at least one --expert NAME=DIR")
        names = [e.name for e in self.experts]
        for name in names:
            if not _NAME.match(name):
                raise ConfigError(f"expert name {name!r} must match {_NAME.pattern}")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"expert name {dup[0]!r} is used twice")
        method = get_method(self.method)
        method.check(self.method_params(), [e.weight for e in self.experts])

    def method_params(self) -> Any:
        """The parsed, validated parameter dataclass of `method`."""
        from .methods import get_method

        raw = {PARAM_ALIASES.get(k, k): v for k, v in self.params.items()}
        return parse_dataclass(get_method(self.method).params, raw, f"{self.method} params")


@dataclass(frozen=True, slots=True)
class MergeOptions:
    """How to run a merge. None of these change the output bytes.

    Attributes:
        device: ``cpu`` or ``cuda`` (masks are drawn on the CPU either way).
        threads: Compute threads on the CPU (0: all cores).
        chunk_elems: Elements per read chunk; larger tensors are streamed in chunks. Multiple of 65536.
        block_elems: Elements per compute block inside a chunk (CPU). Multiple of 65536.
        shard_bytes: Target output shard size in bytes.
        read_ahead: Read-ahead budget, in full chunks (bytes of `chunk_elems` elements of every input).
        resume: Continue an interrupted merge in the output directory.
        scan: NaN/Inf scan of the written shards.
        progress: Show progress bars.
        warn_rounding: Warn when more than this fraction of an expert's changed weights rounds back to base.
        fingerprint: ``stat`` (headers, sizes, mtimes) or ``content`` (sha256 of every input byte).
    """

    device: Device = "cpu"
    threads: int = 0
    chunk_elems: int = 1 << 25
    block_elems: int = 1 << 18
    shard_bytes: int = 2_000_000_000
    read_ahead: int = 1
    resume: bool = False
    scan: bool = True
    progress: bool = True
    warn_rounding: float = 0.1
    fingerprint: Fingerprint = "stat"

    def validate(self) -> None:
        for key in ("chunk_elems", "block_elems"):
            value = getattr(self, key)
            if value <= 0 or value % 65536:
                raise ConfigError(f"{key} must be a positive multiple of 65536, got {value}")
        if self.shard_bytes <= 0 or self.threads < 0 or self.read_ahead < 1:
            raise ConfigError("shard_bytes must be > 0, threads >= 0 and read_ahead >= 1")

    def compute_threads(self) -> int:
        """Worker threads actually used."""
        if self.device == "cuda":
            return 1
        return self.threads or max(1, os.cpu_count() or 1)


def expand_vars(value: Any, where: str) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML value."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            env = os.environ.get(m.group(1))
            if env:
                return env
            if m.group(2) is not None:
                return m.group(2)
            raise ConfigError(f"{where}: environment variable {m.group(1)} is not set and has no default")

        return _VAR.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: expand_vars(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_recipe(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """Read a merge recipe (ours or mergekit-style) into MergeConfig keyword arguments.

    Returns:
        (fields for `MergeConfig`, warnings about semantics that differ from the mergekit file).

    Raises:
        ConfigError: unreadable file, unknown keys, unsupported mergekit features, unset variables.
    """
    import yaml

    where = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read recipe ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: a recipe must be a mapping")
    doc = expand_vars(doc, where)
    if "merge_method" in doc:
        from .mergekit_compat import translate

        return translate(doc, where)
    return _ours(doc, where), []


def _ours(doc: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = {"method", "base", "experts", "params", "seed", "dtype", "copy_from"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
    out = {k: doc[k] for k in known if k in doc and k != "experts"}
    experts = doc.get("experts", {})
    if not isinstance(experts, Mapping):
        raise ConfigError(f"{where}: experts must map names to paths or to {{path, weight}}")
    specs = []
    for name, value in experts.items():
        entry = {"path": value} if isinstance(value, str) else value
        specs.append(parse_dataclass(ExpertSpec, {"name": str(name), **dict(entry)}, f"{where}: experts.{name}"))
    out["experts"] = tuple(specs)
    if "params" in out and not isinstance(out["params"], Mapping):
        raise ConfigError(f"{where}: params must be a mapping")
    return out


def build_config(fields: Mapping[str, Any], where: str) -> MergeConfig:
    """Strictly build and validate a MergeConfig from keyword fields (recipe + command line)."""
    data = dict(fields)
    data["experts"] = tuple(
        e if isinstance(e, ExpertSpec) else parse_dataclass(ExpertSpec, e, f"{where}: expert")
        for e in data.get("experts", ())
    )
    for key in ("method", "base"):
        if not data.get(key):
            raise ConfigError(f"{where}: missing {key} (give --{key} or put it in the recipe)")
    return parse_dataclass(MergeConfig, data, where)
