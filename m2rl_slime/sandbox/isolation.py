"""Process isolation for the embedded executor: probing, per-slot namespaces, and the child's setup.

Two modes, decided once at executor start by `probe()`:

- ``namespaces`` (root with CAP_SYS_ADMIN, the normal case on training nodes and in CI): every slot
  owns a persistent set of namespaces (mount, network, IPC, UTS) built once at startup. In the slot's
  mount namespace the whole host tree is read-only; ``/tmp`` is the slot's private tmpfs directory
  (also the working directory and ``HOME``); ``/dev/shm`` is a private directory on it; ``/run``,
  ``/var/tmp``, ``/home``, ``/root``, ``/mnt``, ``/media`` and ``/srv`` are hidden behind empty
  read-only tmpfs (the interpreter's own prefix is re-exposed read-only when it lives under one of
  them); ``/proc`` is a fresh proc with ``hidepid=invisible``. The network namespace has only a down
  loopback device. Each run additionally gets a fresh PID namespace (so killing its first process
  kills every process it started), drops to the slot's own unprivileged uid/gid with no supplementary
  groups, sets ``no_new_privs`` and a parent-death signal, and is pinned to one CPU (all done by the
  spawner helper, `_spawner.py`, in the forked child before exec).
- ``rlimits_only`` (no root or no namespaces): only rlimits, a scrubbed environment, a private
  working directory and a process-group kill; the network is reachable. Used only when the config
  says ``isolation: best_effort``, with a loud warning, and results say ``network_isolated: false``.

Building a slot's namespaces once instead of per run keeps the per-program overhead to a `setns`
per namespace: creating and tearing down mount/network/IPC namespaces per run costs several ms of
kernel RCU work on exit, more than a quarter of a Python start-up.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from . import _syscalls as sc

logger = logging.getLogger(__name__)

IsolationPolicy = Literal["required", "best_effort"]
Mode = Literal["namespaces", "rlimits_only"]

# Host directories hidden from programs (if present and real directories, not symlinks).
MASKED_DIRS = ("/run", "/var/tmp", "/home", "/root", "/mnt", "/media", "/srv")
_NS_KINDS = (("net", sc.CLONE_NEWNET), ("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("mnt", sc.CLONE_NEWNS))
_SLOT_NS_FLAGS = sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS


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
    """One concurrent execution place: an unprivileged uid, a private directory, optional namespaces."""

    index: int
    uid: int
    root: str  # server-side path; programs see root/tmp as /tmp and root/shm as /dev/shm
    cpu: int | None
    ns_fds: tuple[tuple[int, int], ...] = ()  # (fd, CLONE_NEW*) in setns order

    @property
    def work_dir(self) -> str:
        return os.path.join(self.root, "tmp")

    @property
    def shm_dir(self) -> str:
        return os.path.join(self.root, "shm")

    def close(self) -> None:
        for fd, _ in self.ns_fds:
            os.close(fd)
        self.ns_fds = ()


def _probe_child() -> int:
    """Runs in a forked child: try everything `namespaces` mode needs; exit status 0 = all good."""
    try:
        sc.unshare(_SLOT_NS_FLAGS | sc.CLONE_NEWPID)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
        sc.mount("tmpfs", "/tmp", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=64k")
        mount_proc()
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


def mount_proc() -> None:
    """A fresh /proc that shows a program only its own processes (hidepid=invisible, else hidepid=2)."""
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    try:
        sc.mount("proc", "/proc", "proc", flags, "hidepid=invisible")
    except OSError:  # kernels before 5.8 only know the numeric form
        sc.mount("proc", "/proc", "proc", flags, "hidepid=2")


def _bind_fd(fd: int, target: str, *, recursive: bool = False) -> None:
    sc.mount(f"/proc/self/fd/{fd}", target, None, sc.MS_BIND | (sc.MS_REC if recursive else 0), None)


def _masked_dirs() -> list[str]:
    return [d for d in MASKED_DIRS if os.path.isdir(d) and not os.path.islink(d)]


def _build_slot_namespaces(slot: Slot, exposed: Sequence[str]) -> None:
    """Runs in a forked holder child (root): build the slot's mount/net/ipc/uts namespaces."""
    sc.unshare(_SLOT_NS_FLAGS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
    masks = _masked_dirs()
    # O_PATH handles taken before anything is covered; binds go through /proc/self/fd.
    keep = [(p, os.open(p, os.O_PATH)) for p in exposed if any(p == m or p.startswith(m + "/") for m in masks)]
    tmp_fd, shm_fd = os.open(slot.work_dir, os.O_PATH), os.open(slot.shm_dir, os.O_PATH)
    _bind_fd(tmp_fd, "/tmp")
    if os.path.isdir("/dev/shm"):
        _bind_fd(shm_fd, "/dev/shm")
    for mask in masks:
        sc.mount("tmpfs", mask, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=64k,mode=0755")
        for path, fd in keep:
            if path.startswith(mask + "/"):
                os.makedirs(path, mode=0o755, exist_ok=True)
                _bind_fd(fd, path, recursive=True)
    mount_proc()
    sc.set_mount_readonly("/", readonly=True, recursive=True)
    sc.set_mount_readonly("/tmp", readonly=False, recursive=False)
    if os.path.isdir("/dev/shm"):
        sc.set_mount_readonly("/dev/shm", readonly=False, recursive=False)


def attach_namespaces(slot: Slot, exposed: Sequence[str]) -> None:
    """Build the slot's namespaces in a holder child and keep handles to them in `slot.ns_fds`.

    Must be called while the process is single-threaded (it forks).
    """
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # holder
        code = 0
        try:
            os.close(ready_r)
            os.close(done_w)
            _build_slot_namespaces(slot, exposed)
            os.write(ready_w, b"ok")
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent, then exit
            os.write(ready_w, f"error: {exc}".encode()[:4000])
            code = 3
        finally:
            if code == 0:
                os.read(done_r, 1)
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        message = os.read(ready_r, 4096).decode(errors="replace")
        os.close(ready_r)
        if message != "ok":
            raise OSError(f"building the namespaces of sandbox slot {slot.index} failed: {message}")
        slot.ns_fds = tuple((os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY), flag) for kind, flag in _NS_KINDS)
    finally:
        os.close(done_w)
        os.waitpid(pid, 0)


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
