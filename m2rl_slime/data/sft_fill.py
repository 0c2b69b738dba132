"""The ``-`` placeholder user turns of Nemotron-Competitive-Programming-v1: what they reference and how they are
filled (part of ``prepare-sft``; not a slime hook).

The release ships the user turn of its TACO, APPS, CodeContests and Codeforces rows as a bare ``-``: the
problem statement lives in the public set the row was built from. Each such row names its problem with three
top-level fields (this is what the paper's ``process_sft_data.py`` reads; it fills the turns with
``datasets.load_dataset`` on the four downloads):

- ``dataset``: which set (`FILL_FORMATS`: ``taco``, ``apps``, ``code_contests``, ``open-r1/codeforces``);
- ``split``: the split of that set (``train``, ``test``, ``valid``, ...);
- ``index``: the 0-based position of the problem in that split, in the order ``load_dataset`` yields it
  (the split's shards sorted by name, rows in file order).

Every user message whose content is exactly ``-`` becomes the statement, built per set by `FillFormat.question`
from the columns it names (only those columns are read). A row whose reference cannot be resolved is never
written with ``-``: it is dropped and counted as ``unresolved_placeholder:<set>`` (``unknown`` when the row
names no set we know). `sft_fill_index.FillIndex` looks the referenced problems up in the local downloads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import ConfigError
from .sft_rows import MESSAGES_KEY, PLACEHOLDER_CONTENT

UNKNOWN = "unknown"  # reference source of a row that names no set of `FILL_FORMATS`
UNRESOLVED = "unresolved_placeholder"  # reason prefix of a dropped placeholder row
REFERENCE_KEYS = ("dataset", "split", "index")
FILL_SUFFIXES = (".arrow", ".parquet", ".jsonl")  # preferred first when one split exists in several formats
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?::(?P<split>[A-Za-z0-9_.-]+))?=(?P<path>.+)$")


def _field(column: str) -> Callable[[Mapping[str, Any]], str | None]:
    def question(row: Mapping[str, Any]) -> str | None:
        text = row.get(column)
        return text if isinstance(text, str) and text else None

    question.__doc__ = f"The row's ``{column}``."
    return question


def _codeforces_statement(row: Mapping[str, Any]) -> str | None:
    """open-r1/codeforces: the description, then the input and output formats, the examples and the note, each
    under its heading and separated by blank lines (the layout of the paper's script)."""
    description = row.get("description")
    if not isinstance(description, str) or not description:
        return None
    parts = [description]
    for heading, column in (("Input", "input_format"), ("Output", "output_format")):
        if isinstance(row.get(column), str) and row[column]:
            parts.append(f"{heading}\n\n{row[column]}")
    examples = row.get("examples")
    if examples:
        parts.append("Examples")
        for example in examples:
            for heading in ("input", "output"):
                if isinstance(example, Mapping) and isinstance(example.get(heading), str):
                    parts.append(f"{heading.capitalize()}\n\n{example[heading]}")
    if isinstance(row.get("note"), str) and row["note"]:
        parts.append(f"Note\n\n{row['note']}")
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class FillFormat:
    """One set the placeholders point into.

    Args:
        name: Name on the command line (``--fill-source NAME=PATH``) and in the reason counters.
        hub: Its Hugging Face dataset (what to download).
        aliases: Values of a row's ``dataset`` field that name it (compared lower-cased).
        columns: The columns read from its files; the first must exist, the others are read when present.
        question: Builds the statement from a row holding those columns (None: no usable text).
    """

    name: str
    hub: str
    aliases: tuple[str, ...]
    columns: tuple[str, ...]
    question: Callable[[Mapping[str, Any]], str | None]


FILL_FORMATS: dict[str, FillFormat] = {
    "taco": FillFormat("taco", "BAAI/TACO", ("taco", "baai/taco"), ("question",), _field("question")),
    "apps": FillFormat("apps", "codeparrot/apps", ("apps", "codeparrot/apps"), ("question",), _field("question")),
    "code_contests": FillFormat(
        "code_contests",
        "deepmind/code_contests",
        ("code_contests", "deepmind/code_contests"),
        ("description",),
        _field("description"),
    ),
    "codeforces": FillFormat(
        "codeforces",
        "open-r1/codeforces",
        ("open-r1/codeforces", "codeforces"),
        ("description", "input_format", "output_format", "examples", "note"),
        _codeforces_statement,
    ),
}
_BY_ALIAS = {alias: f.name for f in FILL_FORMATS.values() for alias in f.aliases}


class Reference(NamedTuple):
    """The problem a placeholder row points at.

    `source` is a `FILL_FORMATS` name or `UNKNOWN`; `index` is -1 when the row gives no usable position, and
    `note` then says why.
    """

    source: str
    split: str
    index: int
    note: str = ""

    def __str__(self) -> str:
        return (
            f"{self.source} {self.split or '?'} #{self.index}" if self.index >= 0 else f"{self.source} ({self.note})"
        )

    @property
    def reason(self) -> str:
        """The reason counter of a row dropped because this reference cannot be resolved."""
        return f"{UNRESOLVED}:{self.source}"


def _row_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def reference_of(row: Mapping[str, Any]) -> Reference:
    """The reference of a row with a placeholder user turn (its ``dataset``/``split``/``index`` fields)."""
    dataset = row.get("dataset")
    source = _BY_ALIAS.get(dataset.strip().lower()) if isinstance(dataset, str) else None
    if source is None:
        return Reference(UNKNOWN, "", -1, f"dataset {dataset!r} is none of {', '.join(sorted(_BY_ALIAS))}")
    split = row.get("split")
    if not isinstance(split, str) or not split.strip():
        return Reference(source, "", -1, f"split {split!r} names no split")
    index = _row_number(row.get("index"))
    if index is None:
        return Reference(source, split.strip(), -1, f"index {row.get('index')!r} is not a row number")
    return Reference(source, split.strip(), index)


def fill_row(row: Mapping[str, Any], question: str) -> dict:
    """A copy of `row` with every ``-`` user turn replaced by `question` (other fields untouched)."""
    messages = [
        {**m, "content": question} if m.get("role") == "user" and m.get("content") == PLACEHOLDER_CONTENT else m
        for m in row[MESSAGES_KEY]
    ]
    return {**row, MESSAGES_KEY: messages}


@dataclass(frozen=True, slots=True)
class FillSource:
    """A local download of one `FILL_FORMATS` set: ``NAME[:SPLIT]=PATH``.

    Args:
        name: The set (`FILL_FORMATS` key).
        paths: Files, directories (every .parquet/.arrow/.jsonl inside) or globs, relative to ``--inputs``.
        split: Every file is this split. None: each file's split comes from its path (``train-00000-of-00039
            .parquet``, ``train.jsonl``, ``train/data-00000-of-00009.arrow``).
    """

    name: str
    paths: tuple[str, ...]
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> FillSource:
        match = _SPEC.match(text.strip())
        if not match:
            raise ConfigError(f"--fill-source {text!r}: expected NAME[:SPLIT]=PATH, NAME one of {_names()}")
        return cls.of(match["name"], (match["path"],), match["split"], f"--fill-source {text!r}")

    @classmethod
    def of(cls, name: str, paths: Sequence[str], split: str | None, where: str) -> FillSource:
        if name not in FILL_FORMATS:
            raise ConfigError(f"{where}: unknown fill source {name!r}; known: {_names()}")
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{where}: give the path of the {FILL_FORMATS[name].hub} download")
        return cls(name, tuple(paths), split)


def _names() -> str:
    return ", ".join(FILL_FORMATS)


def parse_blend_fill(document: Any, where: str) -> tuple[FillSource, ...]:
    """The ``fill_sources`` of a blend YAML: ``{NAME[:SPLIT]: path or [paths]}``."""
    if document is None:
        return ()
    if not isinstance(document, Mapping):
        raise ConfigError(f"{where}: expected a mapping NAME[:SPLIT] -> path, NAME one of {_names()}")
    sources = []
    for key, value in document.items():
        name, _, split = str(key).partition(":")
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list):
            raise ConfigError(f"{where}.{key}: expected a path or a list of paths")
        sources.append(FillSource.of(name, paths, split or None, f"{where}.{key}"))
    return tuple(sources)


def merge_fill(blend: Sequence[FillSource], given: Sequence[FillSource]) -> tuple[FillSource, ...]:
    """The blend's fill sources with every set named on the command line replaced by the given entries."""
    named = {s.name for s in given}
    seen = [(s.name, s.split) for s in given]
    duplicate = sorted({f"{n}:{s}" if s else n for n, s in seen if seen.count((n, s)) > 1})
    if duplicate:
        raise ConfigError(f"--fill-source given twice for {', '.join(duplicate)}; list every path of a set once")
    return tuple(s for s in blend if s.name not in named) + tuple(given)
