"""Isolation policy: `required` refuses to run without namespaces; `best_effort` falls back loudly.

The machine running these tests allows namespaces, so the fallback is forced by patching the probe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.sandbox import isolation, local
from m2rl_slime.sandbox.base import RunSpec, SandboxConfigError
from m2rl_slime.sandbox.local import ExecutorSettings, LocalExecutor

NO_NAMESPACES = isolation.IsolationInfo("rlimits_only", False, os.geteuid() == 0, "simulated: unshare refused")


def test_probe_reports_what_this_machine_allows():
    info = isolation.probe()
    if os.geteuid() != 0:
        assert info.mode == "rlimits_only" and "root" in info.reason
    else:
        assert info.mode in ("namespaces", "rlimits_only")
        assert info.network_isolated is (info.mode == "namespaces")


def test_required_refuses_and_says_how_to_proceed(monkeypatch):
    monkeypatch.setattr(local, "probe", lambda: NO_NAMESPACES)
    executor = LocalExecutor(ExecutorSettings(workers=1, isolation="required"))
    with pytest.raises(SandboxConfigError) as info:
        executor.start()
    assert isinstance(info.value, ConfigError)  # stops the run with this line instead of scoring every sample 0
    message = str(info.value)
    assert "simulated: unshare refused" in message
    assert "best_effort" in message and "sandbox_url" in message


def _python_for_everyone() -> str | None:
    """An interpreter an unprivileged uid can run (the fallback has no mount namespace to expose one)."""
    for candidate in (
        sys.executable,
        getattr(sys, "_base_executable", None),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
    ):
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            done = subprocess.run([candidate, "-c", "pass"], user=65534, group=65534, extra_groups=[],
                                  capture_output=True, timeout=30, check=False)  # fmt: skip
        except OSError:
            continue
        if done.returncode == 0:
            return candidate
    return None


def test_fallback_rejects_an_interpreter_the_slot_uid_cannot_run(monkeypatch, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the uid drop of the fallback needs root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    interpreter = private / "python"
    interpreter.symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setattr(local, "probe", lambda: NO_NAMESPACES)
    executor = LocalExecutor(ExecutorSettings(workers=1, isolation="best_effort", python=str(interpreter),
                                              work_root=str(tmp_path)))  # fmt: skip
    try:
        with pytest.raises(
            SandboxConfigError, match=f"{interpreter} does not run inside the sandbox.*m2rl_reward.code.python"
        ):
            executor.start()
    finally:
        executor.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop of the fallback needs root")
def test_best_effort_fallback_runs_programs_and_never_pretends(monkeypatch, caplog):
    python = _python_for_everyone()
    if python is None:
        pytest.skip("no interpreter here is runnable by an unprivileged uid")
    monkeypatch.setattr(local, "probe", lambda: NO_NAMESPACES)
    executor = LocalExecutor(ExecutorSettings(workers=1, isolation="best_effort", memory_limit_mb=512, python=python))
    with caplog.at_level(logging.WARNING):
        executor.start()
    assert "WITHOUT NETWORK OR FILE ISOLATION" in caplog.text
    daemon = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint(os.getuid())\n"

    async def go():
        ok = await executor.run(RunSpec(daemon, run_timeout=5))
        loop = await executor.run(RunSpec("while True:\n    pass\n", cpu_timeout=1, run_timeout=4))
        return ok, loop

    try:
        ok, loop = asyncio.run(go())
        assert ok.status == "Success" and ok.network_isolated is False
        assert int(ok.run_result.stdout) != 0  # dropped to the slot uid
        assert loop.run_result.status == "TimeLimitExceeded"
        slot_uid = executor._slots[0].uid
        assert _wait_gone(slot_uid)  # the setsid'd sleeper was swept with the slot uid
        assert os.listdir(executor._slots[0].work_dir) == []
        assert loop.run_result.cpu_time >= 1.0
    finally:
        base = executor._base
        executor.close()
    assert base is not None and not os.path.exists(base)


def _wait_gone(uid: int, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in os.listdir("/proc") if p.isdigit() and _uid(p) == uid]:
            return True
        time.sleep(0.05)
    return False


def _uid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return int(next(line for line in handle if line.startswith("Uid:")).split()[1])
    except (OSError, StopIteration):
        return None
