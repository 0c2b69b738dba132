"""Executor settings, the CLI flags and the embedded server's command line come from one dataclass."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from m2rl_slime.rewards.code import CodeConfig
from m2rl_slime.sandbox.cli import build_parser
from m2rl_slime.sandbox.embedded import _server_argv
from m2rl_slime.sandbox.registry import _executor_settings
from m2rl_slime.sandbox.settings import ExecutorSettings, from_args, to_argv

CHANGED = {
    "workers": 3, "isolation": "best_effort", "cgroups": "off", "memory_limit_mb": 700, "output_limit_mb": 5,
    "stderr_limit_kb": 9, "disk_limit_mb": 99, "max_processes": 33, "open_files": 77, "stack_mb": 12,
    "max_timeout_s": 12.5, "python": "/opt/py/bin/python3", "cxx": None, "uid_base": 4_000_000, "pin_cpus": False,
    "work_root": "/var/lib/sandbox", "slot_offset": 5, "spawn": "fork",
}  # fmt: skip


def test_every_field_is_changed_by_this_test():
    assert set(CHANGED) == {f.name for f in dataclasses.fields(ExecutorSettings)}
    for f in dataclasses.fields(ExecutorSettings):
        assert CHANGED[f.name] != f.default, f.name


def _parse(argv: list[str], command: str = "serve") -> ExecutorSettings:
    return from_args(build_parser().parse_args([command, *argv] if command == "serve" else [command, "x.py", *argv]))


def test_every_field_round_trips_through_the_flags():
    settings = ExecutorSettings(**CHANGED)
    for command in ("serve", "run"):
        assert _parse(to_argv(settings), command) == settings
    assert _parse([]) == ExecutorSettings()  # no flags: the defaults
    assert to_argv(ExecutorSettings()) == []


def test_the_embedded_server_gets_every_setting():
    settings = ExecutorSettings(**CHANGED)
    argv = _server_argv(settings, "/run/x.sock", "/run/x.frames", "/tmp/own")
    serve = argv[argv.index("serve") + 1 :]
    parsed = from_args(build_parser().parse_args(["serve", *serve]))
    assert parsed == dataclasses.replace(settings, work_root="/tmp/own/work")  # its own directory, by design
    for flag in ("--no-pin-cpus", "--open-files", "--stack-mb", "--cxx", "--uid-base", "--stderr-kb", "--cgroups",
                 "--spawn"):  # fmt: skip
        assert flag in serve
    assert serve[serve.index("--frames") + 1] == "/run/x.frames"


def test_code_config_fields_reach_the_executor_by_name():
    config = CodeConfig(workers=3, isolation="best_effort", memory_limit_mb=700, output_limit_mb=5, python="/p")
    settings = _executor_settings(config)
    shared = {f.name for f in dataclasses.fields(CodeConfig)} & {f.name for f in dataclasses.fields(ExecutorSettings)}
    assert shared == {"workers", "isolation", "memory_limit_mb", "output_limit_mb", "python"}
    assert all(getattr(settings, name) == getattr(config, name) for name in shared)
    hints = typing.get_type_hints(ExecutorSettings)
    assert all(hints[name] == typing.get_type_hints(CodeConfig)[name] for name in shared)


def test_the_spawn_method_resolves_and_a_missing_extension_is_said_in_one_line(monkeypatch, caplog):
    from m2rl_slime.sandbox import local
    from m2rl_slime.sandbox.base import SandboxConfigError

    monkeypatch.setattr(local, "clone_built", lambda: True)
    assert local.LocalExecutor(ExecutorSettings(spawn="auto"))._clone() is True
    assert local.LocalExecutor(ExecutorSettings(spawn="clone"))._clone() is True
    assert local.LocalExecutor(ExecutorSettings(spawn="fork"))._clone() is False
    monkeypatch.setattr(local, "clone_built", lambda: False)
    with caplog.at_level("WARNING"):
        assert local.LocalExecutor(ExecutorSettings(spawn="auto"))._clone() is False
    assert "was not built; slot keepers fork" in caplog.text
    with pytest.raises(SandboxConfigError, match="--spawn clone needs the C extension"):
        local.LocalExecutor(ExecutorSettings(spawn="clone"))._clone()
