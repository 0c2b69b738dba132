"""The minimal root a program sees: planned by the executor, built by the spawner in each slot's mount namespace.

A program sees only (read-only unless said otherwise):

- ``/usr``, ``/bin``, ``/sbin``, ``/lib*`` (symlinks stay symlinks on merged-/usr systems);
- the interpreter's prefixes (``sys.prefix``, ``base_prefix``, ``exec_prefix``: a venv and the Python it
  was made from) and the C++ compiler's prefix, wherever they live (``/opt``, a home directory, a
  project's ``.venv``, ``/tmp``, ``/dev/shm``), each bound at its own path, and every symlink met on the
  way to them re-created, so the configured paths resolve inside as outside;
- ``/etc`` with a handful of files: ``ld.so.cache``, ``nsswitch.conf``, ``localtime`` and the
  ``alternatives`` links (copied), plus generated ``passwd``, ``group`` and ``hosts`` naming only root,
  nobody and the slot's user;
- ``/dev`` with ``null``, ``zero``, ``full``, ``random``, ``urandom``, the ``fd``/``stdin``/``stdout``/
  ``stderr`` links and a private ``/dev/shm`` (writable, the slot's);
- its own ``/proc`` (mounted per run inside the program's PID namespace: its processes only);
- a private writable ``/tmp`` (the slot's, also the working directory and ``HOME``).

Nothing else of the host: no project checkout, no data directories, no ``/run`` or ``/var`` (so no
host sockets), no ``/sys``, no home directories. A prefix under ``/tmp`` or ``/dev/shm`` is bound inside
a small read-only tmpfs at the first path component below them (the "skeleton"), so a program can
neither remove nor rename it and cleanup knows to keep it.

Stdlib only (plus `_syscalls`): `_spawner.py` imports it as a sibling module.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

try:
    from . import _syscalls as sc
except ImportError:  # imported by the spawner script, next to _syscalls
    import _syscalls as sc

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_COPIES = ("/etc/ld.so.cache", "/etc/nsswitch.conf")
ETC_LINK_DIRS = ("/etc/alternatives",)
DEVICES = ("null", "zero", "full", "random", "urandom")
WRITABLE = ("/tmp", "/dev/shm")
_FORBIDDEN = ("/proc", "/sys", "/dev")
_PROBE = "import json,sys;print(json.dumps([sys.prefix,sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix]))"


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def walk_links(path: str, links: dict[str, str], depth: int = 0) -> str:
    """Resolve `path` like the kernel, recording every symlink met (location -> target); return the real path."""
    if depth > 40:
        raise OSError(40, f"too many levels of symbolic links resolving {path!r}")
    current = "/"
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            links[candidate] = target
            current = walk_links(target if target.startswith("/") else os.path.join(current, target), links, depth + 1)
        else:
            current = candidate
    return current


def interpreter_prefixes(python: str) -> list[str]:
    """The prefixes an interpreter reports (as it reports them, symlinks unresolved); raises OSError."""
    done = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise OSError(f"{python} does not run: {last[-300:]}")
    return list(dict.fromkeys(json.loads(done.stdout)))


def plan_root(exposed: Iterable[str]) -> dict[str, Any]:
    """The root for programs that need the paths in `exposed` (interpreters, compilers, their prefixes).

    Returns:
        A JSON-able plan: ``binds`` (real paths bound read-only at their own path), ``links`` (symlinks
        to re-create), ``copies`` (small host files copied), ``link_dirs`` (directories whose symlinks are
        copied), ``devices`` and ``keep`` (top-level names under each writable directory that belong to
        the skeleton and must survive cleanup).

    Raises:
        OSError: a needed path lives under /proc, /sys or /dev (other than /dev/shm).
    """
    binds: list[str] = []
    links: dict[str, str] = {}
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            links[d] = os.readlink(d)
        elif os.path.isdir(d):
            binds.append(d)
    for path in exposed:
        real = walk_links(os.path.abspath(path), links)
        if not os.path.exists(real):
            continue
        if any(_under(real, f) for f in _FORBIDDEN) and not _under(real, "/dev/shm"):
            raise OSError(f"{path} lives under {real}, which the sandbox cannot expose to programs")
        binds.append(real)
    binds = [b for b in sorted(set(binds)) if not any(_under(b, o) and b != o for o in binds)]
    links = {loc: t for loc, t in sorted(links.items()) if not any(_under(loc, b) for b in binds)}
    keep: dict[str, list[str]] = {w: [] for w in WRITABLE}
    for path in [*binds, *links]:
        for w in WRITABLE:
            if _under(path, w) and path != w:
                top = path[len(w) + 1 :].split("/", 1)[0]
                if top not in keep[w]:
                    keep[w].append(top)
    return {
        "binds": binds,
        "links": sorted(links.items()),
        "copies": [p for p in ETC_COPIES if os.path.isfile(p)],
        "link_dirs": [p for p in ETC_LINK_DIRS if os.path.isdir(p)],
        "localtime": os.readlink("/etc/localtime") if os.path.islink("/etc/localtime") else None,
        "devices": [d for d in DEVICES if os.path.exists(f"/dev/{d}")],
        "keep": keep,
    }


# ---- building (in a forked holder, as root, inside fresh namespaces) ---------------------------------------------


def _identity_files(uid: int) -> dict[str, str]:
    return {
        "/etc/passwd": f"root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        f"sandbox:x:{uid}:{uid}:sandbox:/tmp:/bin/false\n",
        "/etc/group": f"root:x:0:\nnogroup:x:65534:\nsandbox:x:{uid}:\n",
        "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
    }


class _Builder:
    """Creates the root under `staging` (a fresh tmpfs), following a plan."""

    def __init__(self, staging: str, writable: Mapping[str, str]):
        self.staging = staging
        self.writable = writable  # /tmp and /dev/shm -> the slot's directories (host paths)
        self.skeletons: set[str] = set()

    def inside(self, path: str) -> str:
        return self.staging + path

    def _skeleton(self, path: str) -> None:
        """A path below /tmp or /dev/shm: make its top-level directory a small tmpfs the program cannot alter."""
        for w in WRITABLE:
            if _under(path, w) and path != w:
                top = os.path.join(w, path[len(w) + 1 :].split("/", 1)[0])
                if top not in self.skeletons:
                    os.makedirs(self.inside(top), mode=0o755, exist_ok=True)
                    sc.mount("tmpfs", self.inside(top), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=64k,mode=0755")
                    self.skeletons.add(top)

    def parents(self, path: str) -> None:
        self._skeleton(path)
        os.makedirs(os.path.dirname(self.inside(path)), mode=0o755, exist_ok=True)

    def bind(self, source: str, target: str, *, recursive: bool = True) -> None:
        self.parents(target)
        where = self.inside(target)
        if os.path.isdir(source):
            os.makedirs(where, mode=0o755, exist_ok=True)
        else:
            os.close(os.open(where, os.O_WRONLY | os.O_CREAT, 0o644))
        sc.mount(source, where, None, sc.MS_BIND | (sc.MS_REC if recursive else 0), None)

    def link(self, location: str, target: str) -> None:
        self.parents(location)
        if not os.path.lexists(self.inside(location)):
            os.symlink(target, self.inside(location))

    def write(self, path: str, data: bytes) -> None:
        self.parents(path)
        with open(self.inside(path), "wb") as handle:
            handle.write(data)


def build_root(plan: Mapping[str, Any], staging: str, writable: Mapping[str, str], uid: int) -> None:
    """Build the plan's root at `staging` and make it this mount namespace's root (read-only but /tmp, /dev/shm).

    Must run as root in a fresh, private mount namespace (the caller unshared it).
    """
    sc.mount("tmpfs", staging, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=4m,nr_inodes=8192,mode=0755")
    b = _Builder(staging, writable)
    for name in ("proc", "tmp", "dev", "etc"):
        os.mkdir(b.inside("/" + name), 0o755)
    sc.mount("tmpfs", b.inside("/dev"), "tmpfs", sc.MS_NOSUID, "size=64k,mode=0755")
    for device in plan["devices"]:
        b.bind(f"/dev/{device}", f"/dev/{device}", recursive=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, b.inside(f"/dev/{name}"))
    b.bind(writable["/tmp"], "/tmp", recursive=False)
    b.bind(writable["/dev/shm"], "/dev/shm", recursive=False)
    for path in plan["binds"]:
        b.bind(path, path)
    for location, target in plan["links"]:
        b.link(location, target)
    for path in plan["copies"]:
        with open(path, "rb") as handle:
            b.write(path, handle.read(8 << 20))
    for directory in plan["link_dirs"]:
        for entry in os.scandir(directory):
            if entry.is_symlink():
                b.link(entry.path, os.readlink(entry.path))
    if plan.get("localtime"):
        b.link("/etc/localtime", plan["localtime"])
    for path, text in _identity_files(uid).items():
        b.write(path, text.encode())
    os.chdir(staging)
    sc.pivot_root(".", ".")  # the old root ends up stacked on top of the new one ...
    sc.umount(".", sc.MNT_DETACH)  # ... and is detached here
    os.chdir("/")
    attrs = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
    sc.mount_setattr("/", set_attrs=attrs, recursive=True)
    sc.mount_setattr("/dev", clear_attrs=sc.MOUNT_ATTR_NODEV, recursive=True)  # device nodes must work ...
    sc.mount_setattr("/dev/shm", set_attrs=sc.MOUNT_ATTR_NODEV, recursive=False)  # ... but nowhere else
    for path in WRITABLE:
        sc.mount_setattr(path, clear_attrs=sc.MOUNT_ATTR_RDONLY, recursive=False)
