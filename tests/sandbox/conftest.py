"""Fixtures for the sandbox tests: one embedded sandbox (2 slots) shared by the whole session.

A sandbox test is skipped only where the sandbox cannot exist (not root, or the kernel refuses
namespaces); with ``M2RL_REQUIRE_SANDBOX=1`` (set by ``.ci/run``) even that fails. Any other failure to
start is a test error, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from m2rl_slime.sandbox.base import RunResult, RunSpec
from m2rl_slime.sandbox.client import ClientSettings
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.isolation import probe
from m2rl_slime.sandbox.local import ExecutorSettings
from m2rl_slime.sandbox.spawn import clone_built


def require_sandbox() -> None:
    """Skip (or, with M2RL_REQUIRE_SANDBOX=1, fail) where namespace isolation cannot exist on this machine."""
    info = probe()
    if info.mode == "namespaces":
        return
    message = f"the code sandbox cannot isolate here: {info.reason}"
    if os.environ.get("M2RL_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"{message} (M2RL_REQUIRE_SANDBOX=1)")
    pytest.skip(message)


def require_clone() -> None:
    """Skip (or, with M2RL_REQUIRE_NATIVE=1, fail) where the C extension that starts programs was not built."""
    if clone_built():
        return
    message = "m2rl_slime.sandbox._native (program start with clone) was not built (setup.py)"
    if os.environ.get("M2RL_REQUIRE_NATIVE") == "1":
        pytest.fail(f"{message} (M2RL_REQUIRE_NATIVE=1)")
    pytest.skip(message)


@pytest.fixture(scope="session", params=["clone", "fork"])
def embedded(request):
    """A private sandbox server with 2 slots and a 512 MiB memory limit, once per way a keeper starts programs.

    Every test of a sandboxed program runs with both (`ExecutorSettings.spawn`): the C extension's clone and
    the Python fork it replaces must give programs the same world.
    """
    require_sandbox()
    if request.param == "clone":
        require_clone()
    sandbox = EmbeddedSandbox(
        ExecutorSettings(workers=2, memory_limit_mb=512, output_limit_mb=16, max_timeout_s=30, spawn=request.param),
        ClientSettings(retries=1, backoff_s=0.05),
    )
    result = asyncio.run(sandbox.run(RunSpec("print(1)")))
    assert result.status == "Success", result
    yield sandbox
    sandbox.shutdown()


def run(sandbox, code: str, **kwargs) -> tuple[RunResult, float]:
    """Run one program from synchronous test code; returns (result, wall seconds, for information only)."""
    started = time.monotonic()
    result = asyncio.run(sandbox.run(RunSpec(code, **kwargs)))
    return result, time.monotonic() - started


def uid_range(sandbox) -> range:
    """The slot uids of this test's own sandbox server (other sandboxes on the machine use other uids)."""
    first, last = sandbox.health()["uid_range"]
    return range(first, last + 1)


def processes_of(uids: range) -> list[int]:
    """PIDs of live processes owned by one of `uids`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                uid_line = next(line for line in handle if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) in uids:
            found.append(int(entry))
    return found


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc)."""
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


def assert_no_leftover_processes(sandbox, timeout: float = 5.0) -> None:
    uids = uid_range(sandbox)
    deadline = time.monotonic() + timeout
    while processes_of(uids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(uids) == []
