"""Per-slot cgroups: the memory, process count and CPU time of a program's whole process tree.

Rlimits are per process: a tree of children multiplies them, and shared memory, memfd and tmpfs pages
are no process's address space. A memory cgroup charges all of that (anonymous memory of every child,
SysV/POSIX shared memory, memfd and tmpfs pages, page cache) to the slot, and the pids controller caps
the tree. Each slot owns one cgroup per controller; the slot's keeper (`_spawner.py`) joins them once, when it
starts (writing ``0`` to ``cgroup.procs``), and forks every program there, so a program is born in
them and can never run outside them. The keeper's own share is kept out of each run's figures: its
CPU time is subtracted (`spawn.SpawnerProcess.program_cpu_ns`) and its anonymous memory is added to
the limit (`SlotCgroup.keeper_allowance`); the pids limit counts it as one process.

Which hierarchy (`detect`):

- **v2** where a cgroup2 hierarchy with the memory and pids controllers is mounted and this process
  may delegate them: its own cgroup (or the nearest ancestor) already enables them in
  ``cgroup.subtree_control``, or this process is alone in its cgroup (then it moves itself into a leaf
  and enables them, as a container's init does);
- else **v1** memory + pids (+ cpuacct for CPU time) where those hierarchies are mounted and writable
  (training images and hybrid hosts have them);
- else none: the executor falls back to rlimits and logs a loud warning.

Slot cgroups are named ``m2rl-sandbox-<pid>-<token>/s<i>`` under this process's cgroup (v1) or the
delegating cgroup (v2). `remove_stale` deletes those of dead servers.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

PREFIX = "m2rl-sandbox-"
_V2_NEEDED = ("memory", "pids")
_V1_NEEDED = ("memory", "pids")


CAP_SYS_RESOURCE = 24


def has_capability(number: int) -> bool:
    """Whether this process holds a capability in its effective set (from /proc/self/status)."""
    try:
        for line in _read("/proc/self/status").splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> number & 1)
    except (OSError, ValueError):
        pass
    return False


def parse_mountinfo(text: str) -> list[tuple[str, str, set[str]]]:
    """(filesystem type, mount point, super options) of every mount in a /proc/self/mountinfo text."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        point = fields[4].replace("\\040", " ")
        out.append((rest[0], point, set(rest[2].split(","))))
    return out


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Controller (or ``""`` for the v2 hierarchy) -> this process's cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out[""] = path
        for name in controllers.split(","):
            if name:
                out[name.removeprefix("name=")] = path
    return out


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: str, value: str) -> None:
    # O_CREAT/O_TRUNC change nothing on cgroupfs (control files exist, writes replace); they let tests use a plain tree
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


@dataclass(slots=True)
class SlotCgroup:
    """The cgroups of one slot: `dirs` maps a controller (v2: ``unified``) to its directory."""

    version: int
    dirs: Mapping[str, str]
    _memory: int | None = field(default=None, repr=False)
    _memsw: bool = field(default=False, repr=False)
    _cpu_fd: int = field(default=-1, repr=False)  # kept open: one pread per reading
    _stat_fd: int = field(default=-1, repr=False)  # memory.stat, likewise

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes ``0`` to, to join every cgroup of the slot."""
        return [os.path.join(d, "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    def setup(self, pids_max: int) -> None:
        """One-time settings: the process cap, no swap, OOM kills the whole group (v2, where the keeper is exempt).

        A group OOM kill spares only processes with ``oom_score_adj`` -1000; the slot's keeper can set
        that only with CAP_SYS_RESOURCE. Without it the OOM killer takes single processes (as in v1),
        programs first (they run with ``oom_score_adj`` 1000).
        """
        if self.version == 2:
            d = self.dirs["unified"]
            _write(os.path.join(d, "pids.max"), str(pids_max))
            settings = [("memory.swap.max", "0")] + [("memory.oom.group", "1")] * has_capability(CAP_SYS_RESOURCE)
            for name, value in settings:
                if os.path.exists(os.path.join(d, name)):
                    _write(os.path.join(d, name), value)
        else:
            _write(os.path.join(self.dirs["pids"], "pids.max"), str(pids_max))
            self._memsw = os.path.exists(os.path.join(self.dirs["memory"], "memory.memsw.limit_in_bytes"))

    def set_memory(self, limit: int) -> None:
        """Memory limit of the whole tree in bytes (written only when it changes)."""
        if limit == self._memory:
            return
        if self.version == 2:
            _write(os.path.join(self.dirs["unified"], "memory.max"), str(limit))
        else:
            memory = self.dirs["memory"]
            mem, memsw = (
                os.path.join(memory, "memory.limit_in_bytes"),
                os.path.join(memory, "memory.memsw.limit_in_bytes"),
            )
            growing = self._memory is not None and limit > self._memory  # None: still unlimited
            # memory+swap must never be below memory: raise it first when growing, lower it last when shrinking
            order = [memsw, mem] if growing else [mem, memsw]
            for path in order:
                if path == mem or self._memsw:
                    _write(path, str(limit))
        self._memory = limit

    def cpu_ns(self) -> int | None:
        """CPU time used by every process that ever ran in the slot, in ns (None where not accounted)."""
        if self._cpu_fd < 0:
            if self.version == 2:
                path = os.path.join(self.dirs["unified"], "cpu.stat")
            elif "cpuacct" in self.dirs:
                path = os.path.join(self.dirs["cpuacct"], "cpuacct.usage")
            else:
                return None
            self._cpu_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        text = os.pread(self._cpu_fd, 4096, 0).decode()
        if self.version == 1:
            return int(text)
        for line in text.splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) * 1000
        return None

    def anon_bytes(self) -> int:
        """Anonymous memory charged to the slot now (``rss`` in v1's memory.stat, ``anon`` in v2's)."""
        if self._stat_fd < 0:
            memory = self.dirs["unified"] if self.version == 2 else self.dirs["memory"]
            self._stat_fd = os.open(os.path.join(memory, "memory.stat"), os.O_RDONLY | os.O_CLOEXEC)
        key = "anon " if self.version == 2 else "rss "
        for line in os.pread(self._stat_fd, 1 << 16, 0).decode().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
        return 0

    def keeper_allowance(self) -> int:
        """Bytes to add to a program's limit for the slot's keeper, read while no program runs in the slot.

        The keeper is the only process then, so the slot's anonymous memory is the keeper's (its pages
        copied on write after it joined); rounded up to a MiB, plus a MiB for its kernel memory (page
        tables, stack, socket buffers). Page cache and tmpfs pages are not anonymous: they stay the
        program's, as before.
        """
        mib = 1 << 20
        return -(-self.anon_bytes() // mib) * mib + mib

    def close(self) -> None:
        for name in ("_cpu_fd", "_stat_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def oom_kills(self) -> int:
        """How many processes of the slot the kernel killed for its memory limit so far."""
        path = os.path.join(self.dirs["unified"], "memory.events") if self.version == 2 else None
        path = path or os.path.join(self.dirs["memory"], "memory.oom_control")
        try:
            for line in _read(path).splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0


@dataclass(slots=True)
class Cgroups:
    """The group directory of this server in each hierarchy it uses; creates and removes slot cgroups."""

    version: int
    groups: Mapping[str, str]  # controller (v2: "unified") -> this server's group directory
    slots: list[SlotCgroup] = field(default_factory=list)

    def create_slot(self, index: int, pids_max: int) -> SlotCgroup:
        dirs = {}
        for controller, group in self.groups.items():
            path = os.path.join(group, f"s{index}")
            os.makedirs(path, exist_ok=True)
            dirs[controller] = path
        slot = SlotCgroup(self.version, dirs)
        slot.setup(pids_max)
        self.slots.append(slot)
        return slot

    def close(self) -> None:
        """Remove the slot cgroups and the group directories (they must be empty of processes)."""
        for slot in self.slots:
            slot.close()
        for group in dict.fromkeys(self.groups.values()):
            _remove_group(group)
        self.slots = []


def _remove_group(group: str) -> None:
    try:
        for name in os.listdir(group):
            child = os.path.join(group, name)
            if os.path.isdir(child):
                _rmdir_quiet(child)
    except OSError:
        pass
    _rmdir_quiet(group)


def _rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            logger.warning("could not remove cgroup %s: %s", path, exc)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parents: Iterable[str]) -> int:
    """Remove group directories left by sandbox servers that died (``m2rl-sandbox-<pid>-*``); returns the count."""
    removed = 0
    for parent in dict.fromkeys(parents):
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            if not name.startswith(PREFIX):
                continue
            pid_text = name[len(PREFIX) :].split("-", 1)[0]
            if pid_text.isdigit() and (int(pid_text) == os.getpid() or not _pid_alive(int(pid_text))):
                _remove_group(os.path.join(parent, name))
                removed += int(not os.path.exists(os.path.join(parent, name)))
    return removed


def _v2_group(mount: str, own: str, token: str) -> tuple[str | None, str]:
    """The group directory to create under a cgroup2 mount, or (None, why not)."""
    own_dir = os.path.join(mount, own.lstrip("/"))
    try:
        available = set(_read(os.path.join(own_dir, "cgroup.controllers")).split())
    except OSError as exc:
        return None, f"cgroup v2 at {own_dir} is not readable ({exc})"
    missing = [c for c in _V2_NEEDED if c not in available]
    if missing:
        return None, f"cgroup v2 at {own_dir} does not offer the {'/'.join(missing)} controller"
    current = own_dir
    while True:  # the nearest cgroup (ours or an ancestor) that already delegates memory and pids
        enabled = set(_read(os.path.join(current, "cgroup.subtree_control")).split())
        if all(c in enabled for c in _V2_NEEDED):
            return os.path.join(current, token), ""
        if os.path.normpath(current) == os.path.normpath(mount):
            break
        current = os.path.dirname(current)
    members = [p for p in _read(os.path.join(own_dir, "cgroup.procs")).split() if p]
    if members != [str(os.getpid())]:
        return None, (
            f"cgroup v2 at {own_dir} holds other processes and no cgroup above it delegates memory and pids; run the "
            "sandbox server as the only process of its cgroup (its own container or systemd unit) or delegate a cgroup"
        )
    leaf = os.path.join(own_dir, f"{token}-server")
    os.mkdir(leaf)
    _write(os.path.join(leaf, "cgroup.procs"), str(os.getpid()))
    _write(os.path.join(own_dir, "cgroup.subtree_control"), " ".join(f"+{c}" for c in _V2_NEEDED))
    return os.path.join(own_dir, token), ""


def _detect_v2(mounts, memberships, token: str) -> tuple[Cgroups | None, str]:
    v2 = [point for fstype, point, _ in mounts if fstype == "cgroup2"]
    if not v2 or "" not in memberships:
        return None, "no cgroup v2 hierarchy is mounted"
    try:
        group, reason = _v2_group(v2[0], memberships[""], token)
        if group is None:
            return None, reason
        remove_stale([os.path.dirname(group)])
        os.mkdir(group)
        _write(os.path.join(group, "cgroup.subtree_control"), " ".join(f"+{c}" for c in _V2_NEEDED))
    except OSError as exc:
        return None, f"cgroup v2 at {v2[0]} is not writable ({exc})"
    return Cgroups(2, {"unified": group}), ""


def _detect_v1(mounts, memberships, token: str) -> tuple[Cgroups | None, str]:
    points: dict[str, str] = {}
    for fstype, point, options in mounts:
        if fstype == "cgroup":
            for controller in ("memory", "pids", "cpuacct"):
                if controller in options and controller in memberships:
                    points.setdefault(controller, os.path.join(point, memberships[controller].lstrip("/")))
    missing = [c for c in _V1_NEEDED if c not in points]
    if missing:
        return None, f"no writable cgroup v1 {'/'.join(missing)} hierarchy"
    groups: dict[str, str] = {}
    for controller, parent in points.items():
        remove_stale([parent])
        try:
            os.mkdir(os.path.join(parent, token))
        except OSError as exc:
            if controller not in _V1_NEEDED:  # cpuacct is optional: CPU time then comes from the process
                continue
            for group in groups.values():
                _rmdir_quiet(group)
            return None, f"cgroup v1 {controller} at {parent} is not writable ({exc})"
        groups[controller] = os.path.join(parent, token)
    return Cgroups(1, groups), ""


def detect(mountinfo: str | None = None, proc_cgroup: str | None = None) -> tuple[Cgroups | None, str]:
    """Create this server's cgroup group directory in the best usable hierarchy.

    Args:
        mountinfo: Text of /proc/self/mountinfo (read when None; tests pass a fake one).
        proc_cgroup: Text of /proc/self/cgroup (likewise).

    Returns:
        (Cgroups, "") or (None, the reasons no hierarchy is usable).
    """
    mounts = parse_mountinfo(mountinfo if mountinfo is not None else _read("/proc/self/mountinfo"))
    memberships = parse_proc_cgroup(proc_cgroup if proc_cgroup is not None else _read("/proc/self/cgroup"))
    token = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    found, why_not_v2 = _detect_v2(mounts, memberships, token)
    if found is not None:
        return found, ""
    found, why_not_v1 = _detect_v1(mounts, memberships, token)
    if found is not None:
        return found, ""
    return None, f"{why_not_v2}; {why_not_v1}"
