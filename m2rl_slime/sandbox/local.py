"""The embedded executor: runs `RunSpec`s as isolated child processes of this process.

It owns the process it lives in: `start()` moves the process into a private mount namespace and
builds one set of namespaces per slot (see `isolation`), so it runs inside the sandbox server process
(`python -m m2rl_slime.sandbox serve`), which the embedded backend spawns on first use. Per run:
files are written into the slot's private directory, and the spawner helper (`_spawner.py`, a tiny
process, cheap to fork) starts the program in a fresh PID namespace after entering the slot's
namespaces, applying rlimits, pinning a CPU and dropping to the slot's uid. stdin/stdout/stderr are memfds, so a program can never block on a full pipe: output beyond
`output_limit_mb` fails with EFBIG (RLIMIT_FSIZE) and the result says ``truncated``. On the wall-clock
deadline the PID namespace's first process is SIGKILLed through a pidfd, which kills everything the
program started. The slot directory is emptied after every run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SandboxError
from . import _syscalls as sc
from ._workdir import decode_files, empty_dir, fetch_files, read_stream, safe_relpath, write_file
from .base import CommandResult, RunResult, RunSpec
from .isolation import IsolationInfo, IsolationPolicy, Limits, Slot, attach_namespaces, probe, sweep_uid
from .spawn import Child, SpawnerProcess

logger = logging.getLogger(__name__)

STDERR_TAIL = 64 * 1024
_CPP_FLAGS = ("-std=c++17", "-O2", "-pipe")
_SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",  # set/dict iteration order of str keys is reproducible across runs
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Settings of the embedded executor (the `serve` command's flags).

    Attributes:
        workers: Programs run at the same time (slots); None = the CPUs this process may use.
        isolation: ``required`` refuses to start without namespaces (network isolation, uid drop);
            ``best_effort`` then runs with rlimits only and a loud warning.
        memory_limit_mb: Address-space limit of a program when the request says -1, and the most a
            request may ask for.
        output_limit_mb: Cap of stdout and of stderr and of any file a program writes.
        disk_limit_mb: Size of a slot's private tmpfs (its /tmp and /dev/shm together).
        max_processes: RLIMIT_NPROC of a program (processes and threads of its slot uid).
        open_files: RLIMIT_NOFILE.
        stack_mb: RLIMIT_STACK.
        max_timeout_s: Largest run/compile timeout a request may ask for.
        python: Interpreter for ``language: python`` (None = the one running this process).
        cxx: C++ compiler command for ``language: cpp`` (disabled when not found).
        uid_base: First slot uid (None = derived from this process id, so servers never share uids).
        pin_cpus: Pin each slot to one CPU (a fork bomb then only competes with its own slot).
        work_root: Directory under which the executor creates its private base directory (None = the
            system temp dir).
        slot_offset: CPU index (modulo the usable CPUs) of this executor's first slot; a server sets it
            so that its worker processes' slots are pinned to different CPUs.
    """

    workers: int | None = None
    isolation: IsolationPolicy = "required"
    memory_limit_mb: int = 4096
    output_limit_mb: int = 16
    disk_limit_mb: int = 256
    max_processes: int = 16
    open_files: int = 256
    stack_mb: int = 64
    max_timeout_s: float = 120.0
    python: str | None = None
    cxx: str | None = "g++"
    uid_base: int | None = None
    pin_cpus: bool = True
    work_root: str | None = None
    slot_offset: int = 0


def _interpreter_paths(python: str) -> list[str]:
    """The directories an interpreter needs (its prefixes), asked from the interpreter itself."""
    probe_code = "import json,sys;print(json.dumps([sys.prefix,sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix]))"
    try:
        out = subprocess.run([python, "-I", "-c", probe_code], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"sandbox python {python!r} cannot be run: {exc}") from None
    if out.returncode != 0:
        raise SandboxError(f"sandbox python {python!r} does not run: {out.stderr.strip()[-500:]}")
    paths = {os.path.realpath(p) for p in json.loads(out.stdout)}
    paths.add(os.path.dirname(os.path.dirname(os.path.realpath(python))))
    paths.add(os.path.dirname(os.path.abspath(python)))
    return sorted(paths)


def _check_runnable_as(python: str, uid: int) -> None:
    """Without a mount namespace the interpreter must be runnable by the unprivileged slot uid."""
    try:
        done = subprocess.run(
            [python, "-I", "-c", "pass"],
            user=uid,
            group=uid,
            extra_groups=[],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        done = None
        problem = str(exc)
    if done is None or done.returncode != 0:
        problem = problem if done is None else done.stderr.decode(errors="replace").strip()[-300:]
        raise SandboxError(
            f"code sandbox: {python} cannot be run by an unprivileged user ({problem}); without namespaces the "
            "interpreter must be readable by everyone: set m2rl_reward.code.python (serve --python) to one that is"
        )


class LocalExecutor:
    """Runs programs in isolated child processes. Call `start()` once, from a single-threaded process."""

    def __init__(self, settings: ExecutorSettings | None = None):
        self.settings = settings or ExecutorSettings()
        self.info: IsolationInfo | None = None
        self._slots: list[Slot] = []
        self._free: list[Slot] = []
        self._sem: asyncio.Semaphore | None = None
        self._base: str | None = None
        self._spawner: SpawnerProcess | None = None
        self._python = ""
        self._cxx: str | None = None
        self._pod = f"{socket.gethostname()}:{os.getpid()}"
        self._waiting = 0
        self._stats = {"runs": 0, "sandbox_errors": 0, "timeouts": 0, "truncated": 0, "in_flight": 0}

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> IsolationInfo:
        """Probe isolation, build the slots. Raises SandboxError when isolation is required but impossible."""
        settings = self.settings
        self._python = os.path.abspath(settings.python or sys.executable)
        exposed = _interpreter_paths(self._python)
        info = probe()
        if info.mode != "namespaces":
            advice = (
                "run the sandbox as root (as training images and CI do), or set m2rl_reward.code.isolation: "
                "best_effort (programs can then reach the network), or point m2rl_reward.code.sandbox_url at a "
                "sandbox server"
            )
            if settings.isolation == "required":
                raise SandboxError(f"code sandbox: namespace isolation is unavailable ({info.reason}); {advice}")
            logger.warning(
                "CODE SANDBOX RUNS WITHOUT NETWORK ISOLATION (isolation: best_effort): %s. Programs run with "
                "rlimits only%s; results carry network_isolated=false.",
                info.reason,
                "" if info.drops_privileges else " as the current user",
            )
        self.info = info
        self._cxx = shutil.which(settings.cxx) if settings.cxx else None
        cpus = sorted(os.sched_getaffinity(0))
        workers = settings.workers or len(cpus)
        uid_base = settings.uid_base if settings.uid_base is not None else 2_000_000 + (os.getpid() % 100_000) * 1024
        if info.mode == "rlimits_only" and info.drops_privileges:
            _check_runnable_as(self._python, uid_base)
        self._base = tempfile.mkdtemp(prefix="m2rl-sandbox-", dir=settings.work_root)
        os.chmod(self._base, 0o711)
        if info.mode == "namespaces":
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
        for index in range(workers):
            cpu = cpus[(settings.slot_offset + index) % len(cpus)] if settings.pin_cpus else None
            slot = Slot(index, uid_base + index, os.path.join(self._base, f"s{index}"), cpu)
            self._make_slot_dirs(slot)
            if info.mode == "namespaces":
                attach_namespaces(slot, exposed)
            self._slots.append(slot)
        self._free = list(self._slots)
        self._spawner = SpawnerProcess(
            self._slots, drop_privileges=info.drops_privileges, pid_namespaces=info.mode == "namespaces"
        )
        logger.info("code sandbox ready: %d slots, isolation %s, python %s", workers, info.mode, self._python)
        return info

    def _make_slot_dirs(self, slot: Slot) -> None:
        os.mkdir(slot.root, 0o755)
        if self.info is not None and self.info.mode == "namespaces":
            size = f"size={self.settings.disk_limit_mb}m,nr_inodes=16384,mode=0755"
            sc.mount("tmpfs", slot.root, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, size)
        owner = slot.uid if self.info is not None and self.info.drops_privileges else None
        for path in (slot.work_dir, slot.shm_dir):
            os.mkdir(path, 0o700)
            if owner is not None:
                os.chown(path, owner, owner)

    def close(self) -> None:
        """Release the slots and remove the base directory (safe to call twice)."""
        if self._spawner is not None:
            self._spawner.close()
            self._spawner = None
        for slot in self._slots:
            slot.close()
            if self.info is not None and self.info.mode == "namespaces":
                try:
                    sc.umount(slot.root)
                except OSError:
                    pass
        self._slots, self._free = [], []
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def describe(self) -> str:
        return f"local({self.info.mode if self.info else 'not started'})"

    def stats(self) -> Mapping[str, Any]:
        return {**self._stats, "slots": len(self._slots), "free": len(self._free), "waiting": self._waiting}

    @property
    def waiting(self) -> int:
        """Runs waiting for a free slot."""
        return self._waiting

    @property
    def languages(self) -> tuple[str, ...]:
        return ("python", "cpp") if self._cxx else ("python",)

    # ---- one run ---------------------------------------------------------------------------------------

    def check(self, spec: RunSpec) -> None:
        """Raise ValueError (naming the field) for a request this executor cannot serve."""
        if spec.language not in self.languages:
            raise ValueError(
                f"language {spec.language!r} is not supported here; supported: {', '.join(self.languages)}"
            )
        for name in ("run_timeout", "compile_timeout"):
            value = getattr(spec, name)
            if not 0 < value <= self.settings.max_timeout_s:
                raise ValueError(f"{name} must be in (0, {self.settings.max_timeout_s}], got {value}")
        decode_files(spec.files)
        for path in spec.fetch_files:
            safe_relpath(path, "fetch_files")

    async def run(self, spec: RunSpec) -> RunResult:
        """Run one program; infrastructure failures come back as ``status: SandboxError``.

        The work happens in a task that owns the slot: if the caller is cancelled (a client hung up),
        the program is killed and the slot is freed only once the program is gone.
        """
        if not self._slots:
            raise SandboxError("LocalExecutor.run called before start()")
        self.check(spec)
        if self._sem is None:
            self._sem = asyncio.Semaphore(len(self._slots))
        self._waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self._waiting -= 1
        task = asyncio.ensure_future(self._owned_run(spec))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _owned_run(self, spec: RunSpec) -> RunResult:
        slot = self._free.pop()
        self._stats["in_flight"] += 1
        try:
            return await self._run_in_slot(slot, spec)
        finally:
            self._stats["in_flight"] -= 1
            self._release(slot)
            assert self._sem is not None
            self._sem.release()

    def _release(self, slot: Slot) -> None:
        try:
            if self.info is not None and self.info.mode == "rlimits_only" and self.info.drops_privileges:
                sweep_uid(slot.uid)
            owner = slot.uid if self.info is not None and self.info.drops_privileges else None
            empty_dir(slot.work_dir, owner, 0o700)
            empty_dir(slot.shm_dir, owner, 0o700)
        except OSError:
            logger.exception("sandbox slot %d could not be cleaned; it is taken out of service", slot.index)
            return
        self._free.append(slot)

    async def _run_in_slot(self, slot: Slot, spec: RunSpec) -> RunResult:
        self._stats["runs"] += 1
        owner = slot.uid if self.info is not None and self.info.drops_privileges else None
        memory = spec.memory_limit_mb if spec.memory_limit_mb > 0 else self.settings.memory_limit_mb
        memory = min(memory, self.settings.memory_limit_mb)
        isolated = self.info is not None and self.info.network_isolated
        try:
            for rel, data in decode_files(spec.files).items():
                write_file(slot.work_dir, rel, data, owner)
            compile_result = None
            if spec.language == "cpp":
                write_file(slot.work_dir, "main.cpp", spec.code.encode(), owner)
                argv = [self._cxx or "g++", *_CPP_FLAGS, "-o", "main", "main.cpp"]
                limits = self._limits(spec.compile_timeout, max(memory, 4096))
                compile_result = await self._command(slot, argv, None, spec.compile_timeout, limits)
                if compile_result.status != "Finished" or compile_result.return_code != 0:
                    return RunResult("Failed", "compilation failed", compile_result, None, {}, self._pod, isolated)
                command = ["./main"]
            else:
                write_file(slot.work_dir, "main.py", spec.code.encode(), owner)
                command = [self._python, "main.py"]
            result = await self._command(
                slot, command, spec.stdin, spec.run_timeout, self._limits(spec.run_timeout, memory)
            )
            files = fetch_files(slot.work_dir, spec.fetch_files, self.settings.output_limit_mb << 20)
        except (OSError, SandboxError) as exc:
            self._stats["sandbox_errors"] += 1
            logger.exception("sandbox slot %d failed to run a program", slot.index)
            return RunResult("SandboxError", f"executor failure: {exc}", None, None, {}, self._pod, isolated)
        ok = result.status == "Finished" and result.return_code == 0
        return RunResult("Success" if ok else "Failed", "", compile_result, result, files, self._pod, isolated)

    def _limits(self, timeout: float, memory_mb: int) -> Limits:
        s = self.settings
        return Limits(
            cpu_seconds=int(timeout) + 1,
            address_space=memory_mb << 20 if memory_mb > 0 else None,
            processes=s.max_processes,
            file_size=s.output_limit_mb << 20,
            open_files=s.open_files,
            stack=s.stack_mb << 20,
        )

    def _env(self, slot: Slot) -> dict[str, str]:
        home = "/tmp" if slot.ns_fds else slot.work_dir
        return {**_SAFE_ENV, "HOME": home, "TMPDIR": home}

    async def _command(
        self, slot: Slot, argv: list[str], stdin: str | None, timeout: float, limits: Limits
    ) -> CommandResult:
        assert self._spawner is not None
        fds = tuple(os.memfd_create(name, os.MFD_CLOEXEC) for name in ("stdin", "stdout", "stderr"))
        try:
            if stdin:
                os.write(fds[0], stdin.encode())
                os.lseek(fds[0], 0, os.SEEK_SET)
            cwd = "/tmp" if slot.ns_fds else slot.work_dir
            child = await self._spawner.spawn(slot, argv, self._env(slot), cwd, limits, fds)
            started = time.monotonic()
            try:
                timed_out, status = await self._wait(child, timeout)
            finally:
                child.close()
            elapsed = time.monotonic() - started
            stdout, out_size = read_stream(fds[1], limits.file_size, tail=False)
            stderr, err_size = read_stream(fds[2], STDERR_TAIL, tail=True)
        finally:
            for fd in fds:
                os.close(fd)
        code = os.waitstatus_to_exitcode(status)
        timed_out = timed_out or code == -signal.SIGXCPU
        truncated = out_size >= limits.file_size or err_size >= limits.file_size
        self._stats["timeouts"] += int(timed_out)
        self._stats["truncated"] += int(truncated)
        return CommandResult(
            "TimeLimitExceeded" if timed_out else "Finished", round(elapsed, 6), code, stdout, stderr, truncated
        )

    async def _wait(self, child: Child, timeout: float) -> tuple[bool, int]:
        """Wait for the exit up to `timeout`; on expiry (or cancellation) kill everything it started.

        Returns (timed out, wait status). A kill is followed by a bounded wait for the exit, so the slot
        is never reused while the program still runs.
        """
        timed_out = False
        try:
            status = await asyncio.wait_for(asyncio.shield(child.exited), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            self._kill(child)
            status = await asyncio.wait_for(asyncio.shield(child.exited), 30.0)
        except asyncio.CancelledError:
            self._kill(child)
            await asyncio.wait_for(asyncio.shield(child.exited), 30.0)
            raise
        if self.info is not None and self.info.mode == "rlimits_only":
            self._kill_group(child.pid)
        return timed_out, status

    def _kill(self, child: Child) -> None:
        child.kill()  # PID namespace: killing its first process kills every process in it
        if self.info is not None and self.info.mode == "rlimits_only":
            self._kill_group(child.pid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
