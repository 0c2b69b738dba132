"""Process isolation for the embedded executor: what this machine allows, and the slots programs run in.

Two modes, decided once at executor start by `probe()`:

- ``namespaces`` (root with CAP_SYS_ADMIN, the normal case on training nodes and in CI): every slot
  owns a network namespace (a down loopback only), a UTS namespace and a mount namespace whose root is
  the minimal root of `_rootfs` (read-only; writable only its private ``/tmp`` and ``/dev/shm``), built
  once by the slot's keeper, which lives in them and in the slot's cgroups. Each run is forked by the
  keeper (so it is born in the slot's cgroups and namespaces), additionally gets fresh PID, mount, IPC
  and cgroup namespaces (its own ``/proc``; no IPC object outlives it), drops to the slot's own unprivileged
  uid/gid with no supplementary groups, sets ``no_new_privs`` and a parent-death signal, runs under a
  seccomp filter (no namespaces, keyrings or ptrace) and is pinned to one CPU (`_spawner.py`).
- ``rlimits_only`` (no root or no namespaces): rlimits, a scrubbed environment, a private working
  directory and a process-group kill; the host tree and the network are reachable. Used only when the
  config says ``isolation: best_effort``, with a loud warning, and results say ``network_isolated: false``.

Building a slot's network and root once instead of per run keeps the per-program cost to a few
`setns`/`unshare` calls: the fresh per-run namespaces are cheap copies of the slot's.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from . import _syscalls as sc
from .cgroups import SlotCgroup

logger = logging.getLogger(__name__)

IsolationPolicy = Literal["required", "best_effort"]
Mode = Literal["namespaces", "rlimits_only"]

_PROBE_FLAGS = sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS | sc.CLONE_NEWCGROUP


@dataclass(frozen=True, slots=True)
class IsolationInfo:
    """What isolation this machine allows (see the module docstring)."""

    mode: Mode
    network_isolated: bool
    drops_privileges: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one command (bytes and seconds)."""

    cpu_seconds: int
    address_space: int | None
    processes: int
    file_size: int
    open_files: int
    stack: int


@dataclass(slots=True)
class Slot:
    """One concurrent execution place: an unprivileged uid, private directories, cgroups, a CPU.

    `root` is a size-capped tmpfs (namespaces mode) holding ``tmp`` (the program's /tmp, working
    directory and HOME) and ``shm`` (its /dev/shm); `staging` is the empty directory the slot's minimal
    root is mounted on inside its own mount namespace; `keep` names the skeleton entries (see `_rootfs`)
    that cleanup must leave in ``tmp`` and ``shm``.
    """

    index: int
    uid: int
    root: str
    staging: str
    cpu: int | None
    cgroup: SlotCgroup | None = None
    keep: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def work_dir(self) -> str:
        return os.path.join(self.root, "tmp")

    @property
    def shm_dir(self) -> str:
        return os.path.join(self.root, "shm")


def _probe_child() -> int:
    """Runs in a forked child: try everything `namespaces` mode needs; exit status 0 = all good."""
    try:
        sc.unshare(_PROBE_FLAGS | sc.CLONE_NEWPID)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
        sc.mount("tmpfs", "/tmp", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=64k")
        sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, None)
        sc.set_mount_readonly("/tmp", readonly=True, recursive=True)
        return 0
    except OSError as exc:
        os.write(2, f"m2rl sandbox probe: {exc}\n".encode())
        return 3


def probe() -> IsolationInfo:
    """Find out, in a throw-away child process, whether `namespaces` mode works here."""
    if os.geteuid() != 0:
        return IsolationInfo(
            "rlimits_only", False, False, "not running as root: namespaces, private mounts and uid drop need root"
        )
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the first failure on the pipe
        os.close(read_fd)
        os.dup2(write_fd, 2)
        os._exit(_probe_child())
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode(errors="replace").strip()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return IsolationInfo("namespaces", True, True)
    return IsolationInfo("rlimits_only", False, True, message or f"probe child exited with status {status}")


def sweep_uid(uid: int, attempts: int = 200) -> None:
    """Kill every process of `uid` (``rlimits_only`` mode as root): a child drops to it and kills -1.

    kill(-1) is repeated until it finds nothing to signal (ESRCH), so processes forked while the sweep
    runs are caught too; bounded, since a zombie that nobody reaps would be signalled forever.
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(attempts):
                os.kill(-1, signal.SIGKILL)
                time.sleep(0.002)
        except OSError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
