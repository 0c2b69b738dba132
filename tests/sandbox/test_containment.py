"""Containment: what a program sees (a minimal root), what it cannot create (namespaces, keys), what
does not survive its run (IPC objects), and what counts against its memory limit (its whole tree).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import run

REPO = Path(__file__).resolve().parents[2]
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def test_the_program_sees_a_minimal_root(embedded):
    code = f"""
import os, sys
print(sorted(os.listdir("/")))
print(sorted(os.listdir("/etc")))
print(sorted(os.listdir("/dev")))
print(os.path.exists({str(REPO / "m2rl_slime")!r}), os.path.exists({str(REPO / "README.md")!r}))
print(sys.prefix == {sys.prefix!r})
open("/dev/null", "w").write("x")
print(len(open("/dev/urandom", "rb").read(8)))
"""
    result, _ = run(embedded, code)
    assert result.status == "Success", result
    top, etc, dev, checkout, prefix, random_bytes = result.run_result.stdout.splitlines()
    assert not {"run", "var", "home", "sys", "mnt", "srv", "media", "boot"} & set(eval(top))
    assert set(eval(etc)) <= {"alternatives", "group", "hosts", "ld.so.cache", "localtime", "nsswitch.conf", "passwd"}
    assert set(eval(dev)) == {"fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"}
    assert checkout == "False False"  # the project checkout is not there, only the interpreter's prefix
    assert prefix == "True" and random_bytes == "8"


def test_host_files_outside_the_interpreter_are_not_visible(embedded):
    """A visible data file next to the venv is an answer key: it must not exist inside."""
    keys = tempfile.mkdtemp(prefix=".m2rl-answer-key-", dir=REPO)
    try:
        Path(keys, "answers.txt").write_text("42\n")
        code = f"import os\nprint(os.path.exists({keys!r}), os.path.exists('/etc/shadow'))\n"
        result, _ = run(embedded, code)
        assert result.run_result.stdout == "False False\n"
    finally:
        shutil.rmtree(keys)


def test_host_unix_sockets_are_not_reachable(embedded):
    where = tempfile.mkdtemp(prefix=".m2rl-socket-", dir=REPO)
    path = os.path.join(where, "host.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    code = f"""
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect({path!r})
    print("CONNECTED")
except OSError as exc:
    print("blocked", type(exc).__name__)
"""
    try:
        result, _ = run(embedded, code)
    finally:
        listener.close()
        shutil.rmtree(where)
    assert result.run_result.stdout.startswith("blocked"), result


def test_no_user_namespaces_and_no_keyrings_inside_programs(embedded):
    code = (
        LIBC
        + """
for name, flags in (("user", 0x10000000), ("net", 0x40000000), ("mount", 0x20000)):
    print(name, libc.unshare(flags), ctypes.get_errno())
print("clone", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0), ctypes.get_errno())
print("add_key", libc.syscall(248, b"user", b"m2rl", b"secret", 6, -4), ctypes.get_errno())
print("keyctl", libc.syscall(250, 0, -4, 0), ctypes.get_errno())
pid = os.fork()
if pid == 0:
    os._exit(0)
print("fork", os.waitpid(pid, 0)[1])
"""
    )
    if os.uname().machine != "x86_64":
        pytest.skip("the syscall numbers in this program are x86_64's")
    result, _ = run(embedded, code)
    assert result.status == "Success", result
    lines = dict(line.split(" ", 1) for line in result.run_result.stdout.splitlines())
    for name in ("user", "net", "mount", "clone", "add_key", "keyctl"):
        assert lines[name] == "-1 1", (name, lines)  # EPERM
    assert lines["fork"] == "0"  # plain fork still works


def test_ipc_objects_do_not_survive_a_run(embedded):
    create = (
        LIBC
        + """
shm = libc.shmget(0, 1 << 20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
queue = libc.msgget(0, 0o1600)
print(shm >= 0, queue >= 0)
"""
    )
    made, _ = run(embedded, create)
    assert made.run_result.stdout == "True True\n", made
    for _ in range(2):  # the next runs (both slots) see no segment and no queue
        look, _ = run(
            embedded, "print(len(open('/proc/sysvipc/shm').readlines()), len(open('/proc/sysvipc/msg').readlines()))"
        )
        assert look.run_result.stdout == "1 1\n", look  # the header line only


def _needs_cgroups(embedded) -> None:
    if embedded.health().get("cgroups") is None:
        pytest.skip("no writable cgroup hierarchy on this machine: memory is limited per process only")


@pytest.mark.parametrize(
    "code",
    [
        # a tree of children, each under the per-process limit
        "import os\npids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n        b = bytearray(150 << 20)\n"
        "        for i in range(0, len(b), 4096):\n            b[i] = 1\n        import time; time.sleep(1)\n        os._exit(0)\n"
        "    pids.append(pid)\nprint('codes', [os.waitpid(p, 0)[1] for p in pids])\n",
        # SysV shared memory, touched
        LIBC + "libc.shmat.restype = ctypes.c_void_p\nfor _ in range(6):  # 6 x 64 MiB, one at a time in memory\n"
        "    seg = libc.shmget(0, 64 << 20, 0o1600)\n    addr = libc.shmat(seg, None, 0)\n"
        "    ctypes.memset(addr, 1, 64 << 20)\n    libc.shmdt(ctypes.c_void_p(addr))\nprint('codes', 'all done')\n",
        # memfd pages are nobody's address space
        "import os\nfds = [os.memfd_create('m') for _ in range(25)]\nfor fd in fds:\n    os.write(fd, b'x' * (15 << 20))\n"
        "print('codes', 'all done')\n",
        # tmpfs bytes
        "for i in range(22):\n    open(f'/tmp/f{i}', 'wb').write(b'x' * (10 << 20))\nprint('codes', 'all done')\n",
    ],
    ids=["children", "sysv-shm", "memfd", "tmpfs"],
)
def test_memory_of_the_whole_tree_counts_against_the_limit(embedded, code):
    _needs_cgroups(embedded)
    result, _ = run(embedded, code, memory_limit_mb=200)
    out = result.run_result.stdout
    assert not (result.status == "Success" and ("all done" in out or "[0, 0, 0, 0]" in out)), result
