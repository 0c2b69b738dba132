"""The embedded backend: lazy start, restart after a crash, clean shutdown, clear startup errors."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from m2rl_slime.errors import SandboxError
from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.local import ExecutorSettings

from .conftest import run


def test_restarts_a_crashed_server_and_cleans_up_on_shutdown():
    sandbox = EmbeddedSandbox(ExecutorSettings(workers=1, memory_limit_mb=512))
    assert sandbox.stats()["server_pid"] is None  # nothing started before the first run
    try:
        first, _ = run(sandbox, "print(1)")
    except SandboxError as exc:
        pytest.skip(f"the embedded sandbox cannot start here: {exc}")
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


def test_startup_failure_is_reported_with_the_servers_reason(tmp_path):
    sandbox = EmbeddedSandbox(ExecutorSettings(workers=1, python=str(tmp_path / "no-such-python")))
    with pytest.raises(SandboxError, match="no-such-python"):
        asyncio.run(sandbox.run(RunSpec("print(1)")))
    sandbox.shutdown()


def test_shared_by_concurrent_loops_in_threads(embedded):
    import concurrent.futures

    def one(i: int) -> str:
        return asyncio.run(embedded.run(RunSpec(f"print({i})"))).run_result.stdout

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(one, range(8))) == sorted(f"{i}\n" for i in range(8))


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def test_a_dead_spawner_is_replaced(embedded):
    server = embedded.stats()["server_pid"]
    spawners = [p for p in _children(server) if "_spawner.py" in Path(f"/proc/{p}/cmdline").read_text()]
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
