"""The embedded executor: runs `RunSpec`s as isolated child processes of this process.

It owns the process it lives in: `start()` moves the process into a private mount namespace, creates
the slots (a size-capped tmpfs, cgroups and an unprivileged uid each) and starts the spawner
(`_spawner.py`), which forks a keeper per slot that joins the slot's cgroups and builds its namespaces
and minimal root; then it runs the configured
interpreter inside a slot exactly as programs will run, and refuses to start if that fails. So it runs
inside the sandbox server process (`python -m m2rl_slime.sandbox serve`), which the embedded backend
spawns on first use.

Per run: files are written into the slot's ``tmp``, the slot's keeper starts the program (see
`isolation`); stdin and stdout are memfds (a program can never block on a full pipe; stdout beyond
`output_limit_mb` fails with EFBIG and the result says ``truncated``), stderr is a pipe drained
concurrently of which only the tail is kept. The deadline is CPU time (the slot cgroup's, else the
program's), polled rarely, with a wall-clock backstop (the request's ``run_timeout``); on either the
PID namespace's first process is SIGKILLed through a pidfd, which kills everything it started. Results
report wall and CPU time. The slot is then emptied, or rebuilt (`_slots`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import SandboxError
from . import _rootfs, _seccomp, _slots
from . import _syscalls as sc
from ._command import Commands
from ._workdir import (
    decode_files,
    fetch_files,
    make_owned_dir,
    remove_dead_dirs,
    remove_tree,
    safe_relpath,
    write_file,
)
from .base import RunResult, RunSpec, SandboxConfigError, wall_backstop
from .cgroups import Cgroups, detect
from .isolation import IsolationInfo, Limits, Slot, probe, sweep_uid
from .settings import ExecutorSettings
from .spawn import SpawnerProcess, clone_built

__all__ = ["ExecutorSettings", "LocalExecutor", "wall_backstop"]

logger = logging.getLogger(__name__)

BASE_PREFIX = "m2rl-sandbox-"
_CPP_FLAGS = ("-std=c++17", "-O2", "-pipe")
_MIN_POLL_S = 0.01
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
_CHECK = "import sys\nprint('m2rl-sandbox-ok', sys.version_info[0])\n"


class LocalExecutor:
    """Runs programs in isolated child processes. Call `start()` once, from a single-threaded process."""

    def __init__(self, settings: ExecutorSettings | None = None):
        self.settings = settings or ExecutorSettings()
        self.info: IsolationInfo | None = None
        self.cgroups: Cgroups | None = None
        self.cgroup_reason = ""
        self._slots: list[Slot] = []
        self._pool: _slots.SlotPool | None = None
        self._base: str | None = None
        self._lock_fd = -1
        self._spawner: SpawnerProcess | None = None
        self._commands: Commands | None = None
        self._python = ""
        self._cxx: str | None = None
        self._cpus = sorted(os.sched_getaffinity(0))
        self._pod = f"{socket.gethostname()}:{os.getpid()}"
        self._stats = {"runs": 0, "sandbox_errors": 0, "timeouts": 0, "truncated": 0, "in_flight": 0, "rebuilt": 0}
        self.on_no_slots = None  # set by the server: called when the last slot is retired

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> IsolationInfo:
        """Probe isolation, build the slots, check the interpreter inside them.

        Raises:
            SandboxConfigError: isolation (or cgroups) required but unavailable, or the interpreter
                does not run inside the sandbox; the message names the fix.
            SandboxError: anything else that stops the executor from starting.
        """
        s = self.settings
        self._python = os.path.abspath(s.python or sys.executable)
        info = self._probe()
        self._cxx = shutil.which(s.cxx) if s.cxx else None
        plan = self._plan() if info.mode == "namespaces" else None
        self._setup_cgroups()
        remove_dead_dirs(BASE_PREFIX, s.work_root)
        self._base, self._lock_fd = make_owned_dir(BASE_PREFIX, s.work_root)
        if info.mode == "namespaces":
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
        self._make_slots(plan)
        self._pool = _slots.SlotPool(self._slots, on_empty=lambda: self.on_no_slots and self.on_no_slots())
        if plan is not None and not _seccomp.supported():
            logger.warning("code sandbox: no seccomp filter for %s; programs may create namespaces and keys",
                           os.uname().machine)  # fmt: skip
        self._spawner = SpawnerProcess(
            self._slots, plan=plan, drop_privileges=info.drops_privileges, pid_namespaces=plan is not None,
            seccomp=plan is not None and _seccomp.supported(), clone=self._clone(),
        )  # fmt: skip
        self._spawner.start()
        self._commands = Commands(self._spawner, s, namespaces=plan is not None, safe_env=_SAFE_ENV,
                                  parallel=len(self._cpus), stats=self._stats)  # fmt: skip
        if self._spawner.slot_errors:
            index, message = next(iter(self._spawner.slot_errors.items()))
            raise SandboxError(f"code sandbox: slot {index} could not be built: {message}")
        asyncio.run(self._check_inside())
        logger.info(
            "code sandbox ready: %d slots, isolation %s, cgroups %s, python %s",
            len(self._slots), info.mode, f"v{self.cgroups.version}" if self.cgroups else "none", self._python,
        )  # fmt: skip
        return info

    def _probe(self) -> IsolationInfo:
        info = probe()
        if info.mode != "namespaces":
            advice = (
                "run the sandbox as root (as training images and CI do), or set m2rl_reward.code.isolation: "
                "best_effort (programs can then reach the network and the host's files), or point "
                "m2rl_reward.code.sandbox_url at a sandbox server"
            )
            if self.settings.isolation == "required":
                raise SandboxConfigError(f"code sandbox: namespace isolation is unavailable ({info.reason}); {advice}")
            logger.warning(
                "CODE SANDBOX RUNS WITHOUT NETWORK OR FILE ISOLATION (isolation: best_effort): %s. Programs run with "
                "rlimits only%s; results carry network_isolated=false.",
                info.reason,
                "" if info.drops_privileges else " as the current user",
            )
        self.info = info
        return info

    def _clone(self) -> bool:
        """Whether keepers start programs with the C extension (``spawn: clone|auto``) or fork (``fork``)."""
        method = self.settings.spawn
        if method == "fork":
            return False
        if clone_built():
            return True
        if method == "clone":
            raise SandboxConfigError(
                "code sandbox: --spawn clone needs the C extension m2rl_slime.sandbox._native, which was not built; "
                "reinstall the package where a C compiler is available (pip install .), or use --spawn auto"
            )
        logger.warning("code sandbox: the C extension m2rl_slime.sandbox._native was not built; slot keepers fork "
                       "each program (about 1 ms more per program)")  # fmt: skip
        return False

    def _plan(self) -> dict:
        try:
            exposed = [self._python, *_rootfs.interpreter_prefixes(self._python)]
        except (OSError, ValueError) as exc:
            raise SandboxConfigError(
                f"code sandbox: the interpreter {self._python} cannot be run ({exc}); set m2rl_reward.code.python "
                "(serve --python) to a working interpreter"
            ) from None
        if self._cxx:
            real = os.path.realpath(self._cxx)
            exposed += [self._cxx, os.path.dirname(os.path.dirname(real))]
        try:
            return _rootfs.plan_root(exposed)
        except OSError as exc:
            raise SandboxConfigError(f"code sandbox: {exc}; set m2rl_reward.code.python (serve --python)") from None

    def _setup_cgroups(self) -> None:
        policy = self.settings.cgroups
        if policy == "off" or self.info is None or not self.info.drops_privileges:
            self.cgroup_reason = "disabled" if policy == "off" else "not running as root"
        else:
            self.cgroups, self.cgroup_reason = detect()
        if self.cgroups is None:
            if policy == "required":
                raise SandboxConfigError(f"code sandbox: no usable cgroup ({self.cgroup_reason}); cgroups: required")
            logger.warning(
                "CODE SANDBOX RUNS WITHOUT CGROUPS (%s): memory is limited per process only (a tree of children, "
                "shared memory, memfd and tmpfs escape the limit) and CPU time is that of each process",
                self.cgroup_reason,
            )

    def _make_slots(self, plan: dict | None) -> None:
        s, info = self.settings, self.info
        assert self._base is not None and info is not None
        workers = s.workers or len(self._cpus)
        uid_base = s.uid_base if s.uid_base is not None else 2_000_000 + (os.getpid() % 100_000) * 1024
        keep = {k: tuple(v) for k, v in plan["keep"].items()} if plan else {}
        for index in range(workers):
            cpu = self._cpus[(s.slot_offset + index) % len(self._cpus)] if s.pin_cpus else None
            slot = Slot(index, uid_base + index, os.path.join(self._base, f"s{index}"),
                        os.path.join(self._base, f"r{index}"), cpu, keep=keep)  # fmt: skip
            if self.cgroups is not None:
                slot.cgroup = self.cgroups.create_slot(index, s.max_processes + 1)  # + the slot's keeper
            self._make_storage(slot)
            self._slots.append(slot)

    def _owner(self, slot: Slot) -> int | None:
        return slot.uid if self.info is not None and self.info.drops_privileges else None

    def _make_storage(self, slot: Slot) -> None:
        tmpfs = self.settings.disk_limit_mb if self.info is not None and self.info.mode == "namespaces" else None
        _slots.make_storage(slot, tmpfs_mb=tmpfs, owner=self._owner(slot))

    async def _check_inside(self) -> None:
        """Run the interpreter (and the C++ compiler) in a slot exactly as programs run; refuse to start otherwise."""
        result = await self.run(RunSpec(_CHECK, run_timeout=60.0))
        run = result.run_result
        if result.status != "Success" or run is None or "m2rl-sandbox-ok" not in run.stdout:
            stderr = (run.stderr if run else "").strip().splitlines()
            problem = stderr[-1] if stderr else result.message or f"exit status {run.return_code if run else None}"
            raise SandboxConfigError(
                f"code sandbox: the interpreter {self._python} does not run inside the sandbox ({problem[:300]}); fix: "
                "set m2rl_reward.code.python (serve --python) to an interpreter that runs with an empty environment, "
                "e.g. /usr/bin/python3"
            )
        if self._cxx and not await self._runs_inside([self._cxx, "--version"]):
            logger.warning("code sandbox: %s does not run inside the sandbox; C++ is disabled", self._cxx)
            self._cxx = None

    async def _runs_inside(self, argv: list[str]) -> bool:
        assert self._pool is not None
        slot = await self._pool.acquire()
        try:
            result = await self._commands.run(slot, argv, None, 30.0, 30.0, self._limits(30.0, 4096))
        except SandboxError:
            return False
        finally:
            await self._recycle(slot)
        return result.status == "Finished" and result.return_code == 0

    def close(self) -> None:
        """Release the slots and remove the base directory (safe to call twice)."""
        if self._spawner is not None:
            self._spawner.close()
            self._spawner = None
        for slot in self._slots:
            if self.info is not None and self.info.mode == "namespaces":
                try:
                    sc.umount(slot.root)
                except OSError:
                    pass
        self._slots, self._pool = [], None
        if self.cgroups is not None:
            self.cgroups.close()
            self.cgroups = None
        if self._base is not None:
            try:
                remove_tree(self._base)
            except OSError:
                logger.warning("could not remove the sandbox directory %s", self._base, exc_info=True)
            self._base = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def describe(self) -> str:
        return f"local({self.info.mode if self.info else 'not started'})"

    def stats(self) -> Mapping[str, Any]:
        pool = self._pool
        return {
            **self._stats,
            "slots": len(self._slots),
            "in_service": pool.in_service if pool else 0,
            "free": pool.free if pool else 0,
            "waiting": self.waiting,
            "uid_range": [self._slots[0].uid, self._slots[-1].uid] if self._slots else None,
            "cgroups": f"v{self.cgroups.version}" if self.cgroups else None,
        }

    @property
    def waiting(self) -> int:
        """Runs waiting for a free slot."""
        return self._pool.waiting if self._pool else 0

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
        longest = self.settings.max_timeout_s
        limits = (("run_timeout", wall_backstop(longest)), ("compile_timeout", wall_backstop(longest)),
                  ("cpu_timeout", longest), ("compile_cpu_timeout", longest))  # fmt: skip
        for name, most in limits:
            value = getattr(spec, name)
            if value is not None and not 0 < value <= most:
                raise ValueError(f"{name} must be in (0, {most}], got {value}")
        decode_files(spec.files)
        for path in spec.fetch_files:
            safe_relpath(path, "fetch_files")

    async def run(self, spec: RunSpec) -> RunResult:
        """Run one program; infrastructure failures come back as ``status: SandboxError``.

        The work happens in a task that owns the slot: if the caller is cancelled (a client hung up),
        the program is killed and the slot is recycled only once the program is gone.
        """
        if self._pool is None:
            raise SandboxError("LocalExecutor.run called before start()")
        self.check(spec)
        slot = await self._pool.acquire()
        task = asyncio.ensure_future(self._owned_run(slot, spec))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _owned_run(self, slot: Slot, spec: RunSpec) -> RunResult:
        self._stats["in_flight"] += 1
        try:
            return await self._run_in_slot(slot, spec)
        finally:
            self._stats["in_flight"] -= 1
            await self._recycle(slot)

    async def _recycle(self, slot: Slot) -> None:
        """Give a slot back, clean; rebuild it if it cannot be cleaned; retire it only if that fails too."""
        assert self._pool is not None
        pool = self._pool
        try:
            if self.info is not None and self.info.mode == "rlimits_only" and self.info.drops_privileges:
                sweep_uid(slot.uid)
            _slots.clean(slot, self._owner(slot))
        except BaseException as exc:  # noqa: BLE001 - whatever a program left behind, the slot must come back
            logger.warning("sandbox slot %d could not be cleaned (%s: %s); rebuilding it", slot.index,
                           type(exc).__name__, str(exc)[:200])  # fmt: skip
            try:
                await self._rebuild(slot)
            except BaseException:  # noqa: BLE001
                logger.exception("sandbox slot %d could not be rebuilt", slot.index)
                pool.retire(slot)
                return
        pool.release(slot)

    async def _rebuild(self, slot: Slot) -> None:
        namespaces = self.info is not None and self.info.mode == "namespaces"
        _slots.drop_storage(slot, tmpfs=namespaces)
        self._make_storage(slot)
        if namespaces:
            assert self._spawner is not None
            await self._spawner.rebuild(slot)
        self._stats["rebuilt"] += 1

    async def _run_in_slot(self, slot: Slot, spec: RunSpec) -> RunResult:
        self._stats["runs"] += 1
        owner = self._owner(slot)
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
                cpu = spec.compile_cpu_timeout or spec.compile_timeout
                limits = self._limits(cpu, max(memory, 4096))
                compile_result = await self._commands.run(slot, argv, None, cpu, spec.compile_timeout, limits)
                if compile_result.status != "Finished" or compile_result.return_code != 0:
                    return RunResult("Failed", "compilation failed", compile_result, None, {}, self._pod, isolated)
                command = ["./main"]
            else:
                write_file(slot.work_dir, "main.py", spec.code.encode(), owner)
                command = [self._python, "main.py"]
            cpu = spec.cpu_timeout or spec.run_timeout
            result = await self._commands.run(
                slot, command, spec.stdin, cpu, spec.run_timeout, self._limits(cpu, memory)
            )
            files = fetch_files(slot.work_dir, spec.fetch_files, self.settings.output_limit_mb << 20)
        except (OSError, SandboxError) as exc:
            self._stats["sandbox_errors"] += 1
            logger.exception("sandbox slot %d failed to run a program", slot.index)
            return RunResult("SandboxError", f"executor failure: {exc}", None, None, {}, self._pod, isolated)
        ok = result.status == "Finished" and result.return_code == 0
        return RunResult("Success" if ok else "Failed", "", compile_result, result, files, self._pod, isolated)

    def _limits(self, cpu_seconds: float, memory_mb: int) -> Limits:
        s = self.settings
        return Limits(
            cpu_seconds=int(cpu_seconds) + 1,
            address_space=memory_mb << 20 if memory_mb > 0 else None,
            processes=s.max_processes,
            file_size=(s.output_limit_mb << 20) + 1,  # one byte past the cap tells "more than the cap" apart
            open_files=s.open_files,
            stack=s.stack_mb << 20,
        )
