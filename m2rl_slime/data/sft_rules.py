"""The SFT blend specification: sources, their selection rules, and the seeded exact selection (not a slime hook).

A source is ``PATH::NAME[:RULE]`` on the command line, or an entry of a blend YAML (see
``recipes/data/sft_table1.yaml``). Rules act on a source's *valid* rows (after `sft_rows.check_row`):

- ``all``: every valid row once;
- ``repeat=K``: every valid row K times (K >= 1);
- ``sample=N``: exactly N rows. N <= valid: N distinct rows drawn uniformly without replacement.
  N > valid: every row ``N // valid`` times plus ``N % valid`` distinct rows once more, so the count is
  exact and no row is repeated more than once beyond the others (the paper's code drew with replacement);
- ``fraction=F``: ``sample=round(F * valid)``, 0 < F <= 1.

Copies of a row are written next to each other, in input order; the data source permutes rows per epoch.
The draw is Knuth's selection sampling (Algorithm S): one pass over the valid rows in input order, row t
chosen with probability ``(wanted - chosen) / (valid - t)``. That yields exactly the wanted count, every
subset equally likely, in O(1) memory, from a `random.Random` seeded with the blend seed and the source
name (never the global RNG), so the same inputs and seed give the same rows on every machine.
"""

from __future__ import annotations

import glob
import math
import os
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .sft_fill import FillSource, parse_blend_fill

RuleKind = Literal["all", "repeat", "sample", "fraction"]
SOURCE_SEPARATOR = "::"
FORMATS = ("parquet", "jsonl")  # output shard formats
INPUT_SUFFIXES = (".jsonl", ".parquet")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_RULE_HELP = "all, repeat=K, sample=N or fraction=F"


@dataclass(frozen=True, slots=True)
class Rule:
    """How many copies of a source's valid rows go into the blend."""

    kind: RuleKind = "all"
    value: float = 1

    @classmethod
    def parse(cls, text: str) -> Rule:
        kind, sep, raw = text.strip().partition("=")
        if kind == "all" and not sep:
            return cls()
        if kind not in ("repeat", "sample", "fraction") or not sep:
            raise ConfigError(f"rule {text!r}: expected {_RULE_HELP}")
        try:
            value = float(raw) if kind == "fraction" else int(raw)
        except ValueError:
            raise ConfigError(f"rule {text!r}: {raw!r} is not a number") from None
        if kind == "fraction" and not 0 < value <= 1:
            raise ConfigError(f"rule {text!r}: a fraction must be in (0, 1]; use repeat=K or sample=N to upsample")
        if kind in ("repeat", "sample") and value < 1:
            raise ConfigError(f"rule {text!r}: {kind} needs a whole number >= 1")
        return cls(kind, value)

    @property
    def needs_count(self) -> bool:
        """True when the selection depends on the number of valid rows (a counting pass first)."""
        return self.kind in ("sample", "fraction")

    def wanted(self, valid: int) -> int:
        """Rows this rule puts into the blend from `valid` valid rows."""
        if self.kind == "all":
            return valid
        if self.kind == "repeat":
            return valid * int(self.value)
        if self.kind == "sample":
            return int(self.value) if valid else 0
        return int(math.floor(self.value * valid + 0.5))

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        return f"fraction={self.value:g}" if self.kind == "fraction" else f"{self.kind}={int(self.value)}"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One source of the blend.

    Args:
        name: Source name (output sub-directory, ``metadata["source_name"]`` of its samples).
        paths: Files, directories (every ``*.jsonl``/``*.parquet`` inside, sorted) or globs.
        rule: Selection rule.
        share: Requested share of the blend in percent (the paper's Table 1), shown next to the realised one.
        rows: Expected output rows (the paper's count); the summary flags a different realised count.
    """

    name: str
    paths: tuple[str, ...]
    rule: Rule = Rule()
    share: float | None = None
    rows: int | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """``PATH::NAME[:RULE]`` (the last ``::`` separates the path)."""
        path, sep, rest = text.rpartition(SOURCE_SEPARATOR)
        if not sep or not path or not rest:
            raise ConfigError(f"--source {text!r}: expected PATH::NAME[:RULE] with RULE one of {_RULE_HELP}")
        name, _, rule = rest.partition(":")
        return cls(_check_name(name, f"--source {text!r}"), (path,), Rule.parse(rule) if rule else Rule())


def _check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: source name {name!r} must match {_NAME.pattern}")
    return name


def resolve_files(spec: SourceSpec, root: Path | None = None) -> list[Path]:
    """The input files of a source: files as given, directories expanded, globs matched (each sorted).

    Raises:
        ConfigError: a path matches nothing, or a file is neither ``.jsonl`` nor ``.parquet``.
    """
    files: list[Path] = []
    for raw in spec.paths:
        path = Path(raw) if root is None or os.path.isabs(raw) else root / raw
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in INPUT_SUFFIXES)
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if os.path.isfile(p))
        if not found:
            raise ConfigError(f"source {spec.name}: {path} matches no .jsonl/.parquet file (download it first?)")
        bad = [str(p) for p in found if p.suffix not in INPUT_SUFFIXES]
        if bad:
            raise ConfigError(f"source {spec.name}: {bad[0]} is neither .jsonl nor .parquet")
        files.extend(found)
    return files


@dataclass(frozen=True, slots=True)
class Blend:
    """A blend YAML: its sources, seed and the sets that fill placeholder user turns (`sft_fill`)."""

    sources: tuple[SourceSpec, ...]
    seed: int | None = None
    fill: tuple[FillSource, ...] = ()


def read_blend(path: str | Path) -> Blend:
    """A blend YAML: ``seed``, ``sources: {name: {path|paths, rule, share, rows}}`` and ``fill_sources:
    {NAME[:SPLIT]: path or [paths]}``.

    Raises:
        ConfigError: naming the bad key.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--blend {path}: cannot read YAML ({exc})") from None
    keys = {"seed", "sources", "description", "fill_sources"}
    unknown = sorted(set(document) - keys) if isinstance(document, dict) else []
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict) or unknown:
        raise ConfigError(f"--blend {path}: expected top-level keys {', '.join(sorted(keys))} (sources a mapping)")
    seed = document.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ConfigError(f"--blend {path}: seed must be an integer")
    sources = tuple(
        _blend_source(name, entry, f"{path}: sources.{name}") for name, entry in document["sources"].items()
    )
    return Blend(sources, seed, parse_blend_fill(document.get("fill_sources"), f"{path}: fill_sources"))


def load_blend(path: str | Path) -> tuple[list[SourceSpec], int | None]:
    """Sources and seed of a blend YAML (`read_blend`)."""
    blend = read_blend(path)
    return list(blend.sources), blend.seed


def _blend_source(name: Any, entry: Any, where: str) -> SourceSpec:
    allowed = {"path", "paths", "rule", "share", "rows", "note"}
    if not isinstance(entry, Mapping) or set(entry) - allowed:
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(sorted(allowed))}")
    paths = entry.get("paths", entry.get("path"))
    paths = [paths] if isinstance(paths, str) else paths
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(f"{where}: path (or paths) must name the source's files")
    share, rows = entry.get("share"), entry.get("rows")
    if share is not None and not (isinstance(share, (int, float)) and 0 < share <= 100):
        raise ConfigError(f"{where}.share: a percentage in (0, 100], got {share!r}")
    if rows is not None and not (isinstance(rows, int) and rows > 0):
        raise ConfigError(f"{where}.rows: a positive integer, got {rows!r}")
    rule = Rule.parse(str(entry.get("rule", "all")))
    return SourceSpec(_check_name(str(name), where), tuple(paths), rule, share, rows)


def check_sources(sources: Sequence[SourceSpec]) -> None:
    if not sources:
        raise ConfigError("no sources: give --source PATH::NAME[:RULE] ... or --blend FILE.yaml")
    names = [s.name for s in sources]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise ConfigError(f"source name(s) used twice: {', '.join(duplicate)}; list every path of a source once")


def selection_rng(seed: int, source: str) -> random.Random:
    """The RNG of one source's draw (independent of the other sources and of their order)."""
    return random.Random(f"m2rl-sft/{seed}/{source}")


def copies(valid: int, wanted: int, rng: random.Random) -> Iterator[int]:
    """Copies of each of `valid` rows, in order, summing exactly to `wanted` (Algorithm S on the remainder)."""
    base, extra = divmod(wanted, valid) if valid else (0, 0)
    for t in range(valid):
        pick = extra > 0 and rng.random() * (valid - t) < extra
        if pick:
            extra -= 1
        yield base + pick
