"""Thin ctypes wrappers over the Linux calls Python 3.10/3.11 lacks (unshare, setns, mount, pivot_root, ...).

Every wrapper raises OSError with errno and the call's arguments. libc is loaded on first use.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
from functools import lru_cache

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
AT_FDCWD = -100
AT_RECURSIVE = 0x8000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_NO_NEW_PRIVS = 38

# mount_setattr(2) has the same number on every architecture that has the unified syscall table.
_SYS_MOUNT_SETATTR = 442
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "loongarch64": 41}
_UNIFIED_TABLE_ARCHES = ("x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x", "loongarch64")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _b(path: str | bytes | None) -> bytes | None:
    return os.fsencode(path) if path is not None else None


def unshare(flags: int) -> None:
    _check(_libc().unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    _check(_libc().setns(fd, nstype), f"setns(fd {fd}, {nstype:#x})")


def mount(source: str | bytes | None, target: str | bytes, fstype: str | None, flags: int, data: str | None) -> None:
    result = _libc().mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(result, f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})")


def umount(target: str | bytes, flags: int = MNT_DETACH) -> None:
    _check(_libc().umount2(_b(target), flags), f"umount2({target!r})")


def prctl(option: int, arg: int, arg3: int = 0) -> None:
    _check(_libc().prctl(option, arg, arg3, 0, 0), f"prctl({option}, {arg})")


def pivot_root(new_root: str, put_old: str) -> None:
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(_errno.ENOSYS, f"pivot_root: unsupported architecture {platform.machine()}")
    _check(int(_libc().syscall(number, _b(new_root), _b(put_old))), f"pivot_root({new_root!r}, {put_old!r})")


def mount_setattr(path: str, *, set_attrs: int = 0, clear_attrs: int = 0, recursive: bool) -> None:
    """mount_setattr(2): set and clear MOUNT_ATTR_* flags on a mount (and, if recursive, on all below it)."""
    if platform.machine() not in _UNIFIED_TABLE_ARCHES:
        raise OSError(_errno.ENOSYS, f"mount_setattr: unsupported architecture {platform.machine()}")
    attr = _MountAttr(set_attrs, clear_attrs, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    result = _libc().syscall(_SYS_MOUNT_SETATTR, AT_FDCWD, _b(path), flags, ctypes.byref(attr), ctypes.sizeof(attr))
    _check(int(result), f"mount_setattr({path!r}, set={set_attrs:#x}, clear={clear_attrs:#x})")


def set_mount_readonly(path: str, *, readonly: bool, recursive: bool) -> None:
    """Set or clear MOUNT_ATTR_RDONLY on a mount (and, if recursive, all below it)."""
    if readonly:
        mount_setattr(path, set_attrs=MOUNT_ATTR_RDONLY, recursive=recursive)
    else:
        mount_setattr(path, clear_attrs=MOUNT_ATTR_RDONLY, recursive=recursive)
