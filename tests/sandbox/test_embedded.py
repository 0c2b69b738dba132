"""The embedded backend: lazy start, restart after a crash (and no 30 s of zeros after it), clean
shutdown, one-line configuration errors, interpreters wherever they live."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.sandbox.base import RunSpec, SandboxConfigError
from m2rl_slime.sandbox.client import ClientSettings
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.local import ExecutorSettings

from .conftest import children_of, require_sandbox, run


def test_restarts_a_crashed_server_and_cleans_up_on_shutdown():
    require_sandbox()
    sandbox = EmbeddedSandbox(ExecutorSettings(workers=1, memory_limit_mb=512))
    assert sandbox.stats()["server_pid"] is None  # nothing started before the first run
    first, _ = run(sandbox, "print(1)")
    assert first.status == "Success"
    pid, directory = sandbox.stats()["server_pid"], sandbox.log_path and os.path.dirname(sandbox.log_path)
    os.kill(pid, signal.SIGKILL)
    second, _ = run(sandbox, "print(2)")
    assert second.run_result.stdout == "2\n"
    assert sandbox.stats()["server_pid"] != pid
    new_dir = os.path.dirname(sandbox.log_path)
    sandbox.shutdown()
    assert not os.path.exists(directory) and not os.path.exists(new_dir)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_samples_score_again_right_after_a_restart():
    """The run in flight when the server dies is sent once more to the new server, and runs at once,
    even with a breaker that would otherwise stay open for a minute."""
    require_sandbox()
    sandbox = EmbeddedSandbox(ExecutorSettings(workers=1, memory_limit_mb=512),
                              ClientSettings(breaker_failures=1, breaker_reset_s=60.0))  # fmt: skip
    try:
        run(sandbox, "print(1)")

        first_pid = sandbox.stats()["server_pid"]

        async def kill_during_a_run():
            task = asyncio.ensure_future(sandbox.run(RunSpec("import time\ntime.sleep(1.5)\nprint('again')")))
            await asyncio.sleep(0.5)
            os.kill(first_pid, signal.SIGKILL)
            return await task, await sandbox.run(RunSpec("print(2)"))

        resent, after = asyncio.run(kill_during_a_run())
        assert resent.status == "Success" and resent.run_result.stdout == "again\n"
        assert after.status == "Success" and after.run_result.stdout == "2\n"
        assert sandbox.stats()["server_pid"] != first_pid
    finally:
        sandbox.shutdown()


def _config_error(python: str, **env: str) -> str:
    sandbox = EmbeddedSandbox(ExecutorSettings(workers=1, python=python))
    try:
        with pytest.raises(SandboxConfigError) as info:
            asyncio.run(sandbox.run(RunSpec("print(1)")))
    finally:
        sandbox.shutdown()
    assert isinstance(info.value, ConfigError) and "\n" not in str(info.value)  # one line, stops the run
    return str(info.value)


def test_a_missing_interpreter_stops_with_one_line(tmp_path):
    require_sandbox()
    message = _config_error(str(tmp_path / "no-such-python"))
    assert "no-such-python" in message and "m2rl_reward.code.python" in message


def test_an_interpreter_that_cannot_run_inside_is_refused_at_start(tmp_path, monkeypatch):
    """A wrapper that needs a variable runs outside (the caller has it), never inside (empty environment)."""
    require_sandbox()
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\n[ -n "$M2RL_WRAPPER_TOKEN" ] || {{ echo "token missing" >&2; exit 3; }}\n'
                       f'exec {sys.executable} "$@"\n')  # fmt: skip
    wrapper.chmod(0o755)
    monkeypatch.setenv("M2RL_WRAPPER_TOKEN", "1")
    message = _config_error(str(wrapper))
    assert str(wrapper) in message and "does not run inside the sandbox" in message and "token missing" in message


def _venv(parent: str) -> Path:
    where = Path(tempfile.mkdtemp(prefix="m2rl-venv-", dir=parent))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")], check=True, timeout=120)
    return where


@pytest.mark.parametrize("parent", ["/tmp", "/dev/shm", "symlink"])
def test_interpreters_run_wherever_they_live(parent, tmp_path):
    """A venv under /tmp or /dev/shm, or reached through a symlink in a directory programs never see."""
    require_sandbox()
    if parent == "/dev/shm" and not os.access("/dev/shm", os.W_OK):
        pytest.skip("/dev/shm is not writable here")
    where = _venv(str(tmp_path) if parent == "symlink" else parent)
    python = where / "venv" / "bin" / "python"
    link_dir = None
    try:
        if parent == "symlink":
            link_dir = Path(tempfile.mkdtemp(prefix="m2rl-link-", dir="/var/tmp"))
            (link_dir / "python").symlink_to(python)
            python = link_dir / "python"
        sandbox = EmbeddedSandbox(ExecutorSettings(workers=1, python=str(python)))
        try:
            result, _ = run(sandbox, "import sys\nprint(sys.prefix)")
        finally:
            sandbox.shutdown()
        outside = subprocess.run([str(python), "-c", "import sys\nprint(sys.prefix)"], capture_output=True, text=True)
        assert result.status == "Success", result
        assert result.run_result.stdout == outside.stdout  # the same interpreter, set up as outside
    finally:
        shutil.rmtree(where, ignore_errors=True)
        if link_dir is not None:
            shutil.rmtree(link_dir, ignore_errors=True)


def test_shared_by_concurrent_loops_in_threads(embedded):
    import concurrent.futures

    def one(i: int) -> str:
        return asyncio.run(embedded.run(RunSpec(f"print({i})"))).run_result.stdout

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(one, range(8))) == sorted(f"{i}\n" for i in range(8))


def test_a_dead_spawner_is_replaced(embedded):
    server = embedded.stats()["server_pid"]
    spawners = [p for p in children_of(server) if "_spawner.py" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(spawners) == 1
    os.kill(spawners[0], signal.SIGKILL)
    result, _ = run(embedded, "print('after')")
    assert result.status == "Success" and result.run_result.stdout == "after\n"


def test_long_timeouts_raise_the_embedded_servers_limit(monkeypatch):
    from m2rl_slime.rewards.code import CodeConfig
    from m2rl_slime.sandbox.registry import get_sandbox

    monkeypatch.setattr("m2rl_slime.sandbox.registry._cache", {})
    sandbox = get_sandbox(CodeConfig(run_timeout_s=300.0, workers=1))
    assert sandbox.settings.max_timeout_s == 300.0
