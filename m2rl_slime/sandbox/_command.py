"""One command of a run: spawn it, drain its stderr, enforce its CPU-time limit and wall-clock backstop.

The deadline is CPU time (the slot cgroup's, else the program's first process and the children it
reaped), polled only when the program could have reached it; the request's wall-clock limit is the
backstop for programs that block. On either, the PID namespace's first process is SIGKILLed through a
pidfd, which kills everything it started. stdin and stdout are memfds (a program never blocks on a
full pipe; stdout past the cap fails with EFBIG and the result says ``truncated``), stderr a pipe
drained concurrently of which only the tail is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping

from ._workdir import TailReader, read_stream
from .base import CommandResult
from .isolation import Limits, Slot
from .settings import ExecutorSettings
from .spawn import Child, SpawnerGone, SpawnerProcess

logger = logging.getLogger(__name__)

_MIN_POLL_S = 0.01


class Commands:
    """Runs commands for an executor.

    Args:
        spawner: The started spawner.
        settings: The executor's settings (output and stderr caps).
        namespaces: Whether programs run in namespaces (else a process-group kill is needed too).
        safe_env: The environment every program gets (HOME and TMPDIR are added per slot).
        parallel: CPUs a program could use at once (for how often CPU time must be polled).
        stats: The executor's counters (timeouts, truncated) to update.
    """

    def __init__(self, spawner: SpawnerProcess, settings: ExecutorSettings, *, namespaces: bool,
                 safe_env: Mapping[str, str], parallel: int, stats: dict[str, int]):  # fmt: skip
        self.spawner, self.settings, self.namespaces = spawner, settings, namespaces
        self.safe_env, self.parallel, self.stats = dict(safe_env), max(1, parallel), stats

    def _env(self, slot: Slot) -> dict[str, str]:
        home = "/tmp" if self.namespaces else slot.work_dir
        return {**self.safe_env, "HOME": home, "TMPDIR": home}

    async def run(
        self, slot: Slot, argv: list[str], stdin: str | None, cpu_limit: float, wall_limit: float, limits: Limits
    ) -> CommandResult:
        """Run one command in `slot` to completion (or its limits) and collect its output and times."""
        namespaces = self.namespaces
        cap = self.settings.output_limit_mb << 20
        fds = tuple(os.memfd_create(name, os.MFD_CLOEXEC) for name in ("stdin", "stdout"))
        err_r, err_w = os.pipe()
        tail = None
        try:
            if stdin:
                os.write(fds[0], stdin.encode())
                os.lseek(fds[0], 0, os.SEEK_SET)
            env = self._env(slot)
            try:
                child, cpu_base = await self._spawn(slot, argv, env, "/tmp" if namespaces else slot.work_dir, limits,
                                                    (*fds, err_w))  # fmt: skip
            finally:
                os.close(err_w)
            tail = TailReader(err_r, self.settings.stderr_limit_kb << 10, asyncio.get_running_loop())
            started = time.monotonic()
            try:
                timed_out, status, rusage_cpu = await self._wait(child, cpu_limit, wall_limit, slot, cpu_base)
            finally:
                child.close()
            elapsed = time.monotonic() - started
            stdout, out_size = read_stream(fds[1], cap, tail=False)
        finally:
            for fd in fds:
                os.close(fd)
            if tail is None:
                os.close(err_r)
        stderr, _ = tail.finish()
        cpu_time = self._cpu_used(slot, cpu_base, child.pid) if cpu_base is not None else rusage_cpu
        code = os.waitstatus_to_exitcode(status)
        timed_out = timed_out or code == -signal.SIGXCPU or (cpu_time is not None and cpu_time > cpu_limit)
        truncated = out_size > cap
        self.stats["timeouts"] += int(timed_out)
        self.stats["truncated"] += int(truncated)
        return CommandResult("TimeLimitExceeded" if timed_out else "Finished", round(elapsed, 6), code, stdout, stderr,
                             truncated, None if cpu_time is None else round(cpu_time, 6))  # fmt: skip

    async def _spawn(
        self, slot: Slot, argv: list[str], env: dict[str, str], cwd: str, limits: Limits, fds
    ) -> tuple[Child, int | None]:
        """Start a program (once more with a new keeper if the slot's died first); returns it and the CPU base.

        The slot's memory limit and CPU base are set once its keeper is there, since the keeper's
        own share is taken out of both.
        """
        for attempt in (1, 2):
            try:
                await self.spawner.ready(slot)
                if slot.cgroup is not None and limits.address_space is not None:
                    slot.cgroup.set_memory(limits.address_space + slot.cgroup.keeper_allowance())
                cpu_base = self.spawner.program_cpu_ns(slot)
                return await self.spawner.spawn(slot, argv, env, cwd, limits, fds), cpu_base
            except SpawnerGone as exc:
                if attempt == 2:
                    raise
                logger.error("code sandbox: %s; starting a new one", exc)
        raise AssertionError("unreachable")

    def _cpu_used(self, slot: Slot, cpu_base: int | None, pid: int) -> float | None:
        """CPU seconds of the program so far: its slot cgroup's (less its keeper's), else those of its first process."""
        if slot.cgroup is not None and cpu_base is not None:
            now = self.spawner.program_cpu_ns(slot)
            return None if now is None else (now - cpu_base) / 1e9
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    async def _wait(
        self, child: Child, cpu_limit: float, wall_limit: float, slot: Slot, cpu_base: int | None
    ) -> tuple[bool, int, float | None]:
        """Wait for the exit; past the CPU limit or the wall-clock backstop (or on cancellation) kill everything.

        CPU use is polled only when it could have reached the limit: after (limit - used) / usable CPUs
        seconds of wall clock, so a normal program is never polled. Returns (timed out, wait status,
        CPU seconds from the spawner's wait4). A kill is followed by a bounded wait for the exit, so the
        slot is never reused while the program still runs.
        """
        started, timed_out, used = time.monotonic(), False, 0.0
        try:
            while True:
                wall = time.monotonic() - started
                if used > cpu_limit or wall >= wall_limit:
                    timed_out = True
                    break
                step = min(wall_limit - wall, max(_MIN_POLL_S, (cpu_limit - used) / self.parallel))
                try:
                    status, cpu = await asyncio.wait_for(asyncio.shield(child.exited), step)
                    break
                except asyncio.TimeoutError:
                    used = self._cpu_used(slot, cpu_base, child.pid) or 0.0
            if timed_out:
                self._kill(child)
                status, cpu = await asyncio.wait_for(asyncio.shield(child.exited), 30.0)
        except asyncio.CancelledError:
            self._kill(child)
            await asyncio.wait_for(asyncio.shield(child.exited), 30.0)
            raise
        if not self.namespaces:
            self._kill_group(child.pid)
        return timed_out, status, cpu

    def _kill(self, child: Child) -> None:
        child.kill()  # PID namespace: killing its first process kills every process in it
        if not self.namespaces:
            self._kill_group(child.pid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
