"""The runs given on the command line: where their scalars are, what each is called, their GPU hours.

A run is ``[NAME=]PATH``. PATH is a run's save directory (``$SAVE_DIR``, holding ``tensorboard/`` and
``m2rl_run_record.json``), a TensorBoard directory or event file, or a wandb export (``.csv``, ``.json``,
``.jsonl``). The name is NAME, else the run record's ``run_name``, else the directory name (the parent's for
a directory called ``tensorboard``), else the export's file name.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from ...launch.records import GpuHours, RunRecord, find_record, gpu_hours, load_record
from .events import EVENT_GLOB, Point, find_event_files, read_event_file
from .series import Series, collect
from .wandb_export import SUFFIXES, read_wandb_export

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9_.+@-]+$")


@dataclass(frozen=True, slots=True)
class RunData:
    """The scalars of one run and what is known about it."""

    name: str
    source: str
    kind: str  # "tensorboard", "wandb" (a history export) or "wandb-panel" (a panel's CSV)
    files: tuple[str, ...]
    scalars: Mapping[str, Series]
    warnings: tuple[str, ...]
    record: RunRecord | None = None
    gpu: GpuHours | None = None

    @property
    def last_step(self) -> int | None:
        return max((s.steps[-1] for s in self.scalars.values() if s.steps), default=None)


def parse_run_arg(text: str) -> tuple[str | None, Path]:
    """``NAME=PATH`` or ``PATH`` (an existing path containing '=' is taken as a path)."""
    name, sep, rest = text.partition("=")
    if sep and _NAME.match(name) and not Path(text).exists():
        return name, Path(rest)
    return None, Path(text)


def _default_name(path: Path) -> str:
    if path.is_file() and path.name.startswith("events.out.tfevents."):
        path = path.parent
    if path.is_file():
        return path.stem
    path = path.resolve()
    return path.parent.name if path.name == "tensorboard" else path.name


def _tensorboard_points(path: Path, verify: bool) -> tuple[list[Path], list[Point], list[str]]:
    files = [path] if path.is_file() else find_event_files(path)
    if not files:
        raise ConfigError(
            f"{path}: no TensorBoard event files ({EVENT_GLOB}) here or below; pass a run's save dir or "
            "TENSORBOARD_DIR, or a wandb export (.csv/.json/.jsonl)"
        )
    from tqdm import tqdm

    points: list[Point] = []
    warnings: list[str] = []
    for file in tqdm(files, desc="event files", unit="file", disable=None, leave=False):
        try:
            file_points, file_warnings = read_event_file(file, verify=verify)
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the event file: {exc}") from None
        points += file_points
        warnings += file_warnings
    return files, points, warnings


def _record_of(run: RunData, explicit: Path | None, search: bool) -> tuple[RunRecord | None, str | None]:
    """The run's record and a warning: an explicit path must be valid; a found one is skipped if malformed."""
    found = explicit or (find_record(run.source) if search else None)
    if found is None:
        return None, None
    try:
        return load_record(found), None
    except ConfigError as exc:
        if explicit is not None:
            raise
        return None, f"run record ignored: {exc}"


def _replace(run: RunData, **changes: object) -> RunData:
    fields = {name: getattr(run, name) for name in RunData.__dataclass_fields__}
    return RunData(**{**fields, **changes})  # type: ignore[arg-type]


def _runs_of(name: str | None, path: Path, verify: bool) -> list[tuple[RunData, bool]]:
    """The runs at `path`, each with whether its name is final (given, or taken from a panel export)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory (expected a run's save dir or a wandb export)")
    if path.is_file() and path.suffix in SUFFIXES:
        exported = read_wandb_export(path)
        if name is not None and len(exported) > 1:
            raise ConfigError(f"{path}: holds {len(exported)} runs ({', '.join(map(str, exported))}); drop {name}=")
        runs = []
        for run_name, (points, warnings) in exported.items():
            scalars, _ = collect(points)
            label = name or run_name or _default_name(path)
            kind = "wandb" if run_name is None else "wandb-panel"
            run = RunData(label, str(path), kind, (str(path),), scalars, tuple(warnings))
            runs.append((run, name is not None or run_name is not None))
        return runs
    files, points, warnings = _tensorboard_points(path, verify)
    scalars, purged = collect(points)
    if purged:
        warnings.append(f"{path}: {purged} point(s) logged again after a restart; the later ones are kept")
    label = name or _default_name(path)
    return [(RunData(label, str(path), "tensorboard", tuple(map(str, files)), scalars, tuple(warnings)), bool(name))]


def load_runs(
    specs: Sequence[str],
    records: Mapping[str, str] | None = None,
    verify: bool = True,
    now: dt.datetime | None = None,
) -> list[RunData]:
    """Read every run of `specs` (``[NAME=]PATH``), with its run record and GPU hours where one exists.

    Args:
        specs: The command line's runs.
        records: Run name -> explicit record path. Otherwise a run's record is looked up in its directory
            and the parent (not for a panel export, whose runs are named by the export).
        verify: Check the event files' data checksums.
        now: The end of a still-open record segment (default: the current time).

    Raises:
        ConfigError: a path holds no run, an explicit record is malformed, or two runs get the same name.
    """
    records = dict(records or {})
    runs: list[RunData] = []
    used: set[str] = set()
    for spec in specs:
        name, path = parse_run_arg(spec)
        for run, final in _runs_of(name, path, verify):
            explicit = records.get(run.name)
            used |= {run.name} if explicit else set()
            search = run.kind != "wandb-panel"
            record, warning = _record_of(run, Path(explicit) if explicit else None, search)
            label = run.name if final or record is None else record.run_name
            warnings = (*run.warnings, warning) if warning else run.warnings
            gpu = gpu_hours(record, now=now) if record is not None else None
            runs.append(_replace(run, name=label, warnings=warnings, record=record, gpu=gpu))
    names = [run.name for run in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"two runs are both named {', '.join(duplicates)}: name them, e.g. rl_math=PATH")
    unknown = sorted(set(records) - used)
    if unknown:
        raise ConfigError(f"--record names unknown run(s) {', '.join(unknown)}; runs: {', '.join(names)}")
    return runs
