"""The spawner: a tiny single-threaded helper process that starts sandboxed programs for the executor.

Forking a Python process costs time proportional to its size (page tables, copy-on-write faults,
teardown before exec): ~1.4 ms for this ~10 MB process against ~4 ms for the 40 MB server, per
program. So the server sends spawn requests here over a SOCK_SEQPACKET socketpair, with the
program's stdin/stdout/stderr memfds attached (SCM_RIGHTS); this process forks, the child enters the
slot's namespaces, applies rlimits, pins its CPU, drops to the slot uid, sets no_new_privs and a
parent-death signal and execs. The reply carries the pid and a pidfd (so the server can kill it); exit
statuses follow as messages. Started as a script (``python -I -S _spawner.py``) so it imports only the
standard library and `_syscalls`. It dies with the server (parent-death signal), and its children die
with it.

Protocol (JSON messages, one per datagram):
  request  {"id", "slot", "argv", "env", "cwd", "limits": [cpu, as|null, nproc, fsize, nofile, stack]}
           + 3 fds (stdin, stdout, stderr)
  replies  {"id", "pid"} + 1 fd (pidfd)  |  {"id", "error"}  |  {"id", "exit": wait status}
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import socket
import sys

if __package__:
    from . import _syscalls as sc
else:  # run as a script (python -I -S): the package itself is not importable, its sibling module is
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _syscalls as sc

MAX_MESSAGE = 1 << 20


def _child(request: dict, fds: list[int], slot: dict, errpipe: int) -> None:
    """In the forked child: set up and exec, or report the failure on `errpipe`. Never returns."""
    try:
        for signo in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; programs get the defaults
            signal.signal(signo, signal.SIG_DFL)
        for index, fd in enumerate(fds):
            os.dup2(fd, index)
        for fd, nstype in slot["ns"]:
            sc.setns(fd, nstype)
        if not slot["ns"]:
            os.setsid()
        cpu, address_space, nproc, fsize, nofile, stack = request["limits"]
        pairs = [
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_NPROC, (nproc, nproc)),
            (resource.RLIMIT_FSIZE, (fsize, fsize)),
            (resource.RLIMIT_NOFILE, (nofile, nofile)),
            (resource.RLIMIT_CORE, (0, 0)),
            (resource.RLIMIT_STACK, (stack, stack)),
        ]
        if address_space is not None:
            pairs.append((resource.RLIMIT_AS, (address_space, address_space)))
        for which, value in pairs:
            resource.setrlimit(which, value)
        if slot["cpu"] is not None:
            os.sched_setaffinity(0, {slot["cpu"]})
        if slot["drop"]:
            os.setgroups([])
            os.setresgid(slot["uid"], slot["uid"], slot["uid"])
            os.setresuid(slot["uid"], slot["uid"], slot["uid"])
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        os.chdir(request["cwd"])
        os.execve(request["argv"][0], request["argv"], request["env"])
    except BaseException as exc:  # noqa: BLE001 - anything that stops the exec is reported, then exit
        os.write(errpipe, f"{type(exc).__name__}: {exc}".encode()[:4000])
    os._exit(127)


class Spawner:
    def __init__(self, sock: socket.socket, slots: dict[int, dict], pidns: bool):
        self.sock = sock
        self.slots = slots
        self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY) if pidns else -1
        self.children: dict[int, int] = {}  # pid -> request id

    def send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        data = json.dumps(message).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def spawn(self, request: dict, fds: list[int]) -> None:
        slot = self.slots[request["slot"]]
        err_r, err_w = os.pipe()
        try:
            if self.pidns_fd >= 0:
                sc.unshare(sc.CLONE_NEWPID)  # the child becomes PID 1 of a fresh PID namespace
            try:
                pid = os.fork()
                if pid == 0:
                    os.close(err_r)
                    _child(request, fds, slot, err_w)
            finally:
                if self.pidns_fd >= 0:
                    sc.setns(self.pidns_fd, sc.CLONE_NEWPID)
            os.close(err_w)
            err_w = -1
            error = os.read(err_r, 4096)  # EOF once exec succeeded (the pipe is close-on-exec)
        except OSError as exc:
            self.send({"id": request["id"], "error": f"spawn failed: {exc}"})
            return
        finally:
            os.close(err_r)
            if err_w >= 0:
                os.close(err_w)
            for fd in fds:
                os.close(fd)
        if error:
            os.waitpid(pid, 0)
            self.send({"id": request["id"], "error": error.decode(errors="replace")})
            return
        self.children[pid] = request["id"]
        pidfd = os.pidfd_open(pid)
        try:
            self.send({"id": request["id"], "pid": pid}, (pidfd,))
        finally:
            os.close(pidfd)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ident = self.children.pop(pid, None)
            if ident is not None:
                self.send({"id": ident, "exit": status})

    def serve(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is self.sock:
                    data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 3)
                    if not data:
                        return  # the server closed its end
                    self.spawn(json.loads(data), fds)
                else:
                    while True:
                        try:
                            if not os.read(wake_r, 512):
                                break
                        except BlockingIOError:
                            break
            self.reap()


def main() -> int:
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    config = json.loads(sys.argv[1])
    if os.getppid() != config["parent"]:
        return 1
    sock = socket.socket(fileno=config["sock"])
    sock.set_inheritable(False)
    slots = {int(k): v for k, v in config["slots"].items()}
    for slot in slots.values():
        for fd, _ in slot["ns"]:
            os.set_inheritable(fd, False)
    Spawner(sock, slots, config["pidns"]).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
