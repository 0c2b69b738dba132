"""Fixtures for the sandbox tests: one embedded sandbox (2 slots) shared by the whole session."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from m2rl_slime.errors import SandboxError
from m2rl_slime.sandbox.base import RunResult, RunSpec
from m2rl_slime.sandbox.client import ClientSettings
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.local import ExecutorSettings

SANDBOX_UID_MIN = 2_000_000  # slot uids start here (ExecutorSettings.uid_base default)


@pytest.fixture(scope="session")
def embedded():
    """A private sandbox server with 2 slots and a 512 MiB memory limit; skipped where it cannot start."""
    sandbox = EmbeddedSandbox(
        ExecutorSettings(workers=2, memory_limit_mb=512, output_limit_mb=16, max_timeout_s=30),
        ClientSettings(retries=1, backoff_s=0.05),
    )
    try:
        asyncio.run(sandbox.run(RunSpec("print(1)")))
    except SandboxError as exc:
        pytest.skip(f"the embedded sandbox cannot start here (needs root for namespaces): {exc}")
    yield sandbox
    sandbox.shutdown()


def run(sandbox, code: str, **kwargs) -> tuple[RunResult, float]:
    """Run one program from synchronous test code; returns (result, wall seconds)."""
    started = time.monotonic()
    result = asyncio.run(sandbox.run(RunSpec(code, **kwargs)))
    return result, time.monotonic() - started


def sandbox_processes() -> list[int]:
    """PIDs of live processes owned by a sandbox slot uid (there must be none between runs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                uid_line = next(line for line in handle if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) >= SANDBOX_UID_MIN:
            found.append(int(entry))
    return found


def assert_no_leftover_processes(timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes() == []
