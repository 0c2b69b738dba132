"""`ExecutorSettings`: the embedded executor's settings, and the one place its command-line flags come from.

Each field carries its flag and help text as dataclass metadata; `add_flags` builds the argparse
options of ``python -m m2rl_slime.sandbox serve`` / ``run`` from them, `from_args` reads them back, and
`to_argv` renders a settings object as flags (the embedded backend starts its server with it), so a new
field is a flag everywhere at once and ``from_args(parse(to_argv(s))) == s`` for every field.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

IsolationPolicy = Literal["required", "best_effort"]
CgroupPolicy = Literal["auto", "required", "off"]
SpawnMethod = Literal["auto", "clone", "fork"]


def _opt(default: Any, flag: str, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"flag": flag, "help": help, **extra})


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Settings of the embedded executor (the `serve` command's flags; see each field's help)."""

    workers: int | None = _opt(None, "--workers", "programs run at the same time: sandbox slots (default: the usable "
                               "CPUs). Unlike uvicorn's --workers this counts slots, not server processes")  # fmt: skip
    isolation: IsolationPolicy = _opt(
        "required",
        "--isolation",
        "required: refuse to run without namespaces (minimal root, no network, uid drop); best_effort: fall back to "
        "rlimits only with a warning",
    )
    cgroups: CgroupPolicy = _opt(
        "auto",
        "--cgroups",
        "per-slot cgroups (memory of the whole process tree incl. shared memory, memfd and tmpfs; process count; CPU "
        "time): auto uses v2, else v1, else falls back to rlimits with a warning; required refuses to start "
        "without; off uses rlimits only",
    )
    memory_limit_mb: int = _opt(
        4096, "--memory-mb", "default and maximum memory of a program in MiB (its whole process tree with cgroups)"
    )
    output_limit_mb: int = _opt(16, "--output-mb", "cap of stdout and of any file a program writes, in MiB")
    stderr_limit_kb: int = _opt(64, "--stderr-kb", "the last this many KiB of stderr are kept (never fails a program)")
    disk_limit_mb: int = _opt(256, "--disk-mb", "private tmpfs size per slot (its /tmp and /dev/shm together), in MiB")
    max_processes: int = _opt(16, "--max-processes", "processes and threads of a program's whole tree")
    open_files: int = _opt(256, "--open-files", "RLIMIT_NOFILE of a program")
    stack_mb: int = _opt(64, "--stack-mb", "RLIMIT_STACK of a program, in MiB")
    max_timeout_s: float = _opt(120.0, "--max-timeout", "largest CPU-time limit a request may ask for, in seconds")
    python: str | None = _opt(None, "--python", "interpreter for language=python (default: the one running this)")
    cxx: str | None = _opt("g++", "--cxx", "C++ compiler for language=cpp (an empty value disables C++)")
    uid_base: int | None = _opt(None, "--uid-base", "first unprivileged uid of the slots (default: from the pid)")
    pin_cpus: bool = _opt(True, "--pin-cpus", "pin each slot to one CPU (a fork bomb then competes only with itself)")
    spawn: SpawnMethod = _opt(
        "auto",
        "--spawn",
        "how a slot keeper starts a program: clone borrows the keeper's memory until exec (clone with CLONE_VM and "
        "CLONE_VFORK, the C extension m2rl_slime.sandbox._native); fork copies the keeper (pure Python, slower); "
        "auto: clone where the extension was built, else fork",
    )
    work_root: str | None = _opt(None, "--work-root", "directory for the executor's files (default: the temp dir)")
    slot_offset: int = _opt(0, "--slot-offset", argparse.SUPPRESS)  # set by a multi-process server per process


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed) of an annotation such as ``int | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _optional(convert):
    def parse(text: str) -> Any:
        return None if text == "" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type = ExecutorSettings) -> None:
    """Add one option per field of `cls` (flag, help and type from the field's metadata and annotation)."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        base, nullable = _base_type(hints[f.name])
        help_text = f.metadata["help"]
        if help_text is not argparse.SUPPRESS and "default:" not in help_text:
            help_text = f"{help_text} (default: {f.default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": f.default, "help": help_text}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) is Literal:
            kwargs["choices"] = list(typing.get_args(base))
        else:
            kwargs["type"] = _optional(base) if nullable else base
        parser.add_argument(f.metadata["flag"], **kwargs)


def from_args(args: argparse.Namespace, cls: type = ExecutorSettings, **overrides: Any) -> Any:
    """The settings object the parsed flags describe (`overrides` win)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    return cls(**{**values, **overrides})


def to_argv(settings: Any) -> list[str]:
    """The flags that make `from_args` rebuild `settings` (fields at their default are left out)."""
    argv: list[str] = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value == f.default:
            continue
        flag = f.metadata["flag"]
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, "" if value is None else str(value)]
    return argv
