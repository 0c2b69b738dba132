"""A seccomp-bpf filter for sandboxed programs: no new namespaces, no keyrings, no kernel attack surface they never need.

Installed by the spawner's child right before exec (after ``no_new_privs``), so it binds the program and
everything it starts. Denied (``EPERM``): ``unshare``, ``setns``, ``clone`` with any ``CLONE_NEW*`` flag
(so no user namespaces inside programs), the keyring calls ``add_key``/``keyctl``/``request_key`` (the user
keyring of a slot uid would otherwise outlive a run), ``ptrace``/``process_vm_readv``/``process_vm_writev``,
``io_uring_*``, ``bpf``, ``perf_event_open`` and ``userfaultfd``. ``clone3`` gets ``ENOSYS`` (its flags sit
in a struct a filter cannot read; glibc then falls back to ``clone``). A system call of another ABI
(i386 via ``int 0x80``, x32) kills the process.

Hand-written (about 20 classic-BPF instructions, assembled below) because slime's image has no seccomp
binding and libseccomp.so is not guaranteed to be installed there.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

# linux/audit.h
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "arm64": 0xC00000B7}
_X32_BIT = 0x40000000

_DENIED = ("unshare", "setns", "add_key", "request_key", "keyctl", "ptrace", "process_vm_readv", "process_vm_writev",
           "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open", "userfaultfd")  # fmt: skip
_NUMBERS = {
    "x86_64": {
        "clone": 56, "clone3": 435, "unshare": 272, "setns": 308, "add_key": 248, "request_key": 249, "keyctl": 250,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    },
    "aarch64": {
        "clone": 220, "clone3": 435, "unshare": 97, "setns": 268, "add_key": 217, "request_key": 218, "keyctl": 219,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
    },
}  # fmt: skip
_NUMBERS["arm64"] = _NUMBERS["aarch64"]
NAMESPACE_FLAGS = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# classic BPF opcodes and seccomp return values
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data (little-endian: low word of args[0] at 16)


def supported() -> bool:
    """Whether a filter exists for this architecture."""
    return os.uname().machine in _NUMBERS


def _assemble(program: list[tuple]) -> bytes:
    """(op, k, jt_label, jf_label) / ("label", name) items -> packed `struct sock_filter` array."""
    labels, index = {}, 0
    for item in program:
        if item[0] == "label":
            labels[item[1]] = index
        else:
            index += 1
    out, index = [], 0
    for item in program:
        if item[0] == "label":
            continue
        op, k, jt, jf = item

        def offset(target, here=index):
            return 0 if target is None else labels[target] - here - 1

        out.append(struct.pack("<HBBI", op, offset(jt), offset(jf), k))
        index += 1
    return b"".join(out)


def build_filter(machine: str | None = None) -> bytes:
    """The filter program for `machine` (default: this one) as raw `sock_filter` bytes."""
    machine = machine or os.uname().machine
    numbers = _NUMBERS[machine]
    program: list[tuple] = [
        (_LD_ABS_W, _OFF_ARCH, None, None),
        (_JEQ, _AUDIT_ARCH[machine], None, "kill"),
        (_LD_ABS_W, _OFF_NR, None, None),
    ]
    if machine == "x86_64":
        program.append((_JGE, _X32_BIT, "kill", None))
    program += [(_JEQ, numbers["clone"], "clone", None), (_JEQ, numbers["clone3"], "enosys", None)]
    program += [(_JEQ, numbers[name], "eperm", None) for name in _DENIED]
    program += [
        (_RET, _RET_ALLOW, None, None),
        ("label", "clone"),
        (_LD_ABS_W, _OFF_ARG0, None, None),
        (_JSET, NAMESPACE_FLAGS, "eperm", None),
        (_RET, _RET_ALLOW, None, None),
        ("label", "eperm"),
        (_RET, _RET_ERRNO | errno.EPERM, None, None),
        ("label", "enosys"),
        (_RET, _RET_ERRNO | errno.ENOSYS, None, None),
        ("label", "kill"),
        (_RET, _RET_KILL_PROCESS, None, None),
    ]
    return _assemble(program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Filter:
    """A built filter kept in memory, so that a forked child can install it with one prctl."""

    def __init__(self, machine: str | None = None):
        code = build_filter(machine)
        self.code = code  # what the native spawn installs (`_native.spawn`)
        self._buffer = ctypes.create_string_buffer(code, len(code))
        self._prog = _SockFprog(len(code) // 8, ctypes.cast(self._buffer, ctypes.c_void_p))

    def install(self, prctl) -> None:
        """Install on the calling thread (needs no_new_privs); `prctl` is `_syscalls.prctl`."""
        prctl(22, 2, ctypes.addressof(self._prog))  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
