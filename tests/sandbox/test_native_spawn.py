"""`m2rl_slime.sandbox._native.spawn`: the C start of a program (clone with CLONE_VM | CLONE_VFORK).

Each step it takes before exec is checked from inside the started program (/proc/self/status, limits,
namespaces), each failure names its step, bad arguments raise before anything starts, and a keeper
gives the same answers whether it clones or forks. The whole sandbox suite also runs once per spawn
method (`conftest.embedded`).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from m2rl_slime.sandbox import _seccomp
from m2rl_slime.sandbox import _syscalls as sc

from .conftest import children_of, require_clone, require_sandbox

require_clone()
from m2rl_slime.sandbox import _native  # noqa: E402 - only once the extension is known to be there

REPO = Path(__file__).resolve().parents[2]
CAT = "/bin/cat"


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _spawn(argv, *, env=(), cwd="/", stdin=None, flags=0, mount_proc=False, oom=b"1000", rlimits=(), cpu=-1, uid=-1,
           seccomp=None) -> tuple[int, str | None, int, str, str]:  # fmt: skip
    """Start `argv` with the given steps; returns (exit code or 0, failed stage, errno, stdout, stderr)."""
    stdin_fd = os.memfd_create("in")
    os.write(stdin_fd, (stdin or "").encode())
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_fd, err_fd = os.memfd_create("out"), os.memfd_create("err")
    try:
        pid, stage, code = _native.spawn(argv, list(env), cwd, (stdin_fd, out_fd, err_fd), flags, mount_proc, oom,
                                         list(rlimits), cpu, uid, seccomp)  # fmt: skip
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) if stage is None else 0
        texts = []
        for fd in (out_fd, err_fd):
            os.lseek(fd, 0, os.SEEK_SET)
            texts.append(os.read(fd, 1 << 20).decode())
        return status, stage, code, texts[0], texts[1]
    finally:
        for fd in (stdin_fd, out_fd, err_fd):
            os.close(fd)


def test_descriptors_environment_directory_and_arguments_reach_the_program(tmp_path):
    (tmp_path / "f").write_text("from a file\n")
    status, stage, _, out, err = _spawn(["/bin/sh", "-c", 'cat f; echo "$A|$B"; cat; echo oops >&2; exit 3'],
                                        env=["A=1", "B=two words"], cwd=str(tmp_path), stdin="from stdin\n")  # fmt: skip
    assert (status, stage) == (3, None)
    assert out == "from a file\n1|two words\nfrom stdin\n"
    assert err == "oops\n"


def test_the_program_has_a_new_session_default_signals_and_an_empty_mask():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python ignores it; programs must not
        status, _, _, out, _ = _spawn([CAT, "/proc/self/status"])
    finally:
        signal.signal(signal.SIGUSR1, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})
    fields = _status(out)
    assert status == 0
    assert int(fields["SigBlk"], 16) == 0
    ignored = int(fields["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "0"  # none asked for
    status, _, _, out, _ = _spawn(["/bin/sh", "-c", "cut -d' ' -f6 /proc/self/stat; echo $$"])
    session, shell = out.split()
    assert int(session) == int(shell) != os.getsid(0)  # its own session, led by the program


def test_oom_score_rlimits_and_cpu_pin_are_set():
    cpu = sorted(os.sched_getaffinity(0))[-1]
    rlimits = [(resource.RLIMIT_NOFILE, 37, 37), (resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_CPU, 5, 6)]
    status, stage, _, out, _ = _spawn(["/bin/sh", "-c", "cat /proc/self/oom_score_adj /proc/self/limits; "
                                       "grep Cpus_allowed_list /proc/self/status"],
                                      oom=b"1000", rlimits=rlimits, cpu=cpu)  # fmt: skip
    assert (status, stage) == (0, None)
    lines = out.splitlines()
    assert lines[0] == "1000"
    limits = {line[:26].strip(): line[26:].split()[:2] for line in lines[1:] if line.startswith("Max")}
    assert limits["Max open files"] == ["37", "37"]
    assert limits["Max core file size"] == ["0", "0"]
    assert limits["Max cpu time"] == ["5", "6"]
    assert lines[-1].split()[-1] == str(cpu)


def _root() -> None:
    require_sandbox()  # root with namespaces (else skipped, or failed under M2RL_REQUIRE_SANDBOX=1)


def test_the_uid_drop_and_the_seccomp_filter_apply_before_exec():
    _root()
    if not _seccomp.supported():
        pytest.skip(f"no seccomp filter for {os.uname().machine}")
    uid = 3_999_917
    code = _seccomp.build_filter()
    status, stage, _, out, err = _spawn(
        ["/bin/sh", "-c", "id -u; id -g; id -G; grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; "
                          "unshare -U true && echo unshared || echo refused"],
        env=["PATH=/usr/bin:/bin"], uid=uid, seccomp=code,
    )  # fmt: skip
    assert (status, stage) == (0, None), err
    lines = out.splitlines()
    assert lines[:3] == [str(uid), str(uid), str(uid)]  # every supplementary group dropped
    fields = _status("\n".join(lines[3:6]))
    assert fields["Seccomp"].strip() == "2"
    assert int(fields["CapEff"], 16) == 0
    assert lines[-1] == "refused"  # no user namespace from inside a program


_NAMESPACES = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from m2rl_slime.sandbox import _native
from m2rl_slime.sandbox import _syscalls as sc
sc.unshare(sc.CLONE_NEWNS)  # as the executor does: nothing mounted below reaches the host
sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
flags = sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWCGROUP | sc.CLONE_NEWPID
r, w = os.pipe()
pid, stage, code = _native.spawn(["/bin/sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'; readlink /proc/self/ns/ipc "
                                  "/proc/self/ns/mnt /proc/self/ns/cgroup"], [], "/", (0, w, 2), flags, True, b"0", [],
                                 -1, -1, None)
os.close(w)
with os.fdopen(r) as pipe:
    out = pipe.read().split()
os.waitpid(pid, 0)
print(json.dumps({"stage": stage, "out": out, "ours": [os.readlink(f"/proc/self/ns/{n}") for n in ("ipc", "mnt", "cgroup")]}))
"""


def test_fresh_pid_mount_ipc_and_cgroup_namespaces_with_their_own_proc():
    _root()
    done = subprocess.run([sys.executable, "-c", _NAMESPACES, str(REPO)], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stage"] is None
    pid, visible, *namespaces = report["out"]
    assert pid == "1"  # the program is the first process of its PID namespace
    assert int(visible) <= 3  # its /proc shows its own namespace only (sh, ls, grep)
    assert all(new != old for new, old in zip(namespaces, report["ours"], strict=True))


def test_each_failure_names_its_step_and_the_child_is_reaped(tmp_path):
    assert _spawn(["/no/such/program"])[1:3] == ("execve", errno.ENOENT)
    assert _spawn([CAT], cwd=str(tmp_path / "missing"))[1:3] == ("chdir", errno.ENOENT)
    assert _spawn([CAT], rlimits=[(resource.RLIMIT_NOFILE, 10, 5)])[1:3] == ("setrlimit", errno.EINVAL)
    (tmp_path / "plain").write_text("not a program")
    assert _spawn([str(tmp_path / "plain")])[1:3] == ("execve", errno.EACCES)
    assert _zombies() == []  # a failed child is reaped by spawn itself


def _zombies() -> list[int]:
    found = []
    for pid in children_of(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    found.append(pid)
        except OSError:
            continue
    return found


def test_bad_arguments_raise_before_anything_starts():
    fds = (0, 1, 2)
    with pytest.raises(ValueError, match="flags"):
        _native.spawn([CAT], [], "/", fds, sc.CLONE_NEWUSER, False, b"0", [], -1, -1, None)
    with pytest.raises(ValueError, match="mount_proc"):
        _native.spawn([CAT], [], "/", fds, sc.CLONE_NEWNS, True, b"0", [], -1, -1, None)
    with pytest.raises(ValueError, match="argv is empty"):
        _native.spawn([], [], "/", fds, 0, False, b"0", [], -1, -1, None)
    with pytest.raises(ValueError, match="null"):
        _native.spawn(["/bin/ca\0t"], [], "/", fds, 0, False, b"0", [], -1, -1, None)
    with pytest.raises(ValueError, match="sock_filter"):
        _native.spawn([CAT], [], "/", fds, 0, False, b"0", [], -1, -1, b"1234567")
    with pytest.raises(ValueError, match="too many rlimits"):
        _native.spawn([CAT], [], "/", fds, 0, False, b"0", [(7, 1, 1)] * 17, -1, -1, None)
    with pytest.raises(TypeError):
        _native.spawn([CAT], [], "/", fds, 0, False, b"0", [(7, 1)], -1, -1, None)
    for cpu in (5000, -2):
        with pytest.raises(ValueError, match="cpu"):
            _native.spawn([CAT], [], "/", fds, 0, False, b"0", [], cpu, -1, None)
    for uid in (-2, 1 << 32):
        with pytest.raises(ValueError, match="uid"):
            _native.spawn([CAT], [], "/", fds, 0, False, b"0", [], -1, uid, None)


def _keeper_answers(clone: bool, argv: list[str], cwd: str = "/") -> dict:
    """A keeper's reply to one spawn request (outside namespaces; it runs in this process)."""
    from m2rl_slime.sandbox._spawner import Keeper

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    slot = {"cpu": None, "drop": False, "uid": 0}
    keeper = Keeper(theirs, slot, None, -1, namespaces=False, oom_protected=False, clone=clone)
    fds = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    request = {"op": "spawn", "id": 7, "argv": argv, "env": {"A": "1"}, "cwd": cwd,
               "limits": [5, None, 64, 1 << 20, 64, 8 << 20]}  # fmt: skip
    try:
        keeper.spawn(request, fds)
        data, pidfds, _, _ = socket.recv_fds(ours, 65536, 1)
        reply = json.loads(data)
        for fd in pidfds:
            os.close(fd)
        if "pid" in reply:
            os.waitpid(reply["pid"], 0)
        return reply
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("argv, cwd", [(["/no/such/program"], "/"), ([CAT], "/no/such/dir")])
def test_a_cloning_keeper_words_start_failures_as_a_forking_one(argv, cwd):
    cloned, forked = _keeper_answers(True, argv, cwd), _keeper_answers(False, argv, cwd)
    assert cloned == forked
    assert cloned["error"].startswith("FileNotFoundError: [Errno 2] No such file or directory: ")


def test_a_bad_argument_is_an_answer_and_the_keeper_goes_on():
    cloned, forked = _keeper_answers(True, [CAT, "a\0b"]), _keeper_answers(False, [CAT, "a\0b"])
    assert cloned == forked == {"id": 7, "error": "ValueError: embedded null byte"}


def test_a_cloning_keeper_starts_programs_like_a_forking_one():
    for clone in (True, False):
        reply = _keeper_answers(clone, ["/bin/true"])
        assert reply["id"] == 7 and reply["pid"] > 0, reply
