"""The spawner: a tiny single-threaded helper process that owns the slots' namespaces and starts programs.

Forking a Python process costs time proportional to its size (page tables, copy-on-write faults,
teardown before exec): ~1.4 ms for this ~10 MB process against ~4 ms for the 40 MB server, per
program. So the server sends spawn requests here over a SOCK_SEQPACKET socketpair, with the program's
stdin/stdout/stderr attached (SCM_RIGHTS). At start (and on a ``rebuild`` request) the spawner builds
each slot's namespaces in a forked holder: network (only a down loopback), UTS (hostname ``sandbox``)
and mount, whose root is the minimal root of `_rootfs`; it keeps their fds, the holder exits.

Per program the forked child joins the slot's cgroups, enters the slot's network, UTS and mount
namespaces, unshares fresh mount, IPC and cgroup namespaces (so SysV/POSIX IPC objects never outlive
a run and ``/proc`` is its own), mounts ``/proc`` inside its fresh PID namespace, applies rlimits, pins
its CPU, drops to the slot uid, sets a parent-death signal and ``no_new_privs``, installs the seccomp
filter and execs. The reply carries the pid and a pidfd (so the server can kill it); the exit status
and CPU time follow as a message. Started as a script (``python -I -S _spawner.py``) so it imports only
the standard library and its sibling modules. It dies with the server (parent-death signal), and its
children die with it.

Protocol (JSON messages, one per datagram):
  start-up  -> {"op": "ready", "errors": {slot: message}}
  request   {"op": "spawn", "id", "slot", "argv", "env", "cwd", "limits": [cpu, as|null, nproc, fsize, nofile,
            stack]} + 3 fds (stdin, stdout, stderr)
            {"op": "rebuild", "id", "slot"}
  replies   {"id", "pid"} + 1 fd (pidfd) | {"id", "error"} | {"id", "exit": wait status, "cpu": seconds}
            {"id", "rebuilt": true} | {"id", "error"}
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
    from . import _rootfs, _seccomp
    from . import _syscalls as sc
else:  # run as a script (python -I -S): the package itself is not importable, its sibling modules are
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _rootfs
    import _seccomp
    import _syscalls as sc

MAX_MESSAGE = 1 << 20
_SLOT_NS = (("net", sc.CLONE_NEWNET), ("uts", sc.CLONE_NEWUTS), ("mnt", sc.CLONE_NEWNS))  # setns order: mnt last
_RUN_NS = sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWCGROUP


def _holder(plan: dict, slot: dict, ready_w: int, done_r: int) -> None:
    """In a forked holder: build the slot's namespaces, report, wait until the spawner holds them. Never returns."""
    code = 0
    try:
        sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWUTS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
        socket.sethostname("sandbox")
        _rootfs.build_root(plan, slot["staging"], {"/tmp": slot["tmp"], "/dev/shm": slot["shm"]}, slot["uid"])
        os.write(ready_w, b"ok")
    except BaseException as exc:  # noqa: BLE001 - report anything to the spawner, then exit
        os.write(ready_w, f"{type(exc).__name__}: {exc}".encode()[:4000])
        code = 3
    finally:
        if code == 0:
            os.read(done_r, 1)
        os._exit(code)


def build_namespaces(plan: dict, slot: dict) -> list[tuple[int, int]]:
    """Build one slot's namespaces in a holder child; return (fd, CLONE_NEW*) pairs. Raises OSError."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(done_w)
        _holder(plan, slot, ready_w, done_r)
    os.close(ready_w)
    os.close(done_r)
    try:
        message = os.read(ready_r, 4096).decode(errors="replace")
        if message != "ok":
            raise OSError(f"building the namespaces of sandbox slot {slot['index']} failed: {message}")
        return [(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY), flag) for kind, flag in _SLOT_NS]
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def _child(request: dict, fds: list[int], slot: dict, spawner: Spawner, errpipe: int) -> None:
    """In the forked child: set up and exec, or report the failure on `errpipe`. Never returns."""
    try:
        for signo in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; programs get the defaults
            signal.signal(signo, signal.SIG_DFL)
        for index, fd in enumerate(fds):
            os.dup2(fd, index)
        for fd in slot["cgroup_fds"]:
            os.write(fd, b"0")  # join the slot's cgroups: memory, pids and CPU time of the whole tree
        ns = slot["ns"]
        if ns:
            for fd, nstype in ns:
                sc.setns(fd, nstype)
            sc.unshare(_RUN_NS)
            sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, None)
        else:
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
        if spawner.filter is not None:
            spawner.filter.install(sc.prctl)
        os.chdir(request["cwd"])
        os.execve(request["argv"][0], request["argv"], request["env"])
    except BaseException as exc:  # noqa: BLE001 - anything that stops the exec is reported, then exit
        os.write(errpipe, f"{type(exc).__name__}: {exc}".encode()[:4000])
    os._exit(127)


class Spawner:
    def __init__(self, sock: socket.socket, config: dict):
        self.sock = sock
        self.plan = config["plan"]
        self.slots = {int(k): v for k, v in config["slots"].items()}
        self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY) if config["pidns"] else -1
        self.filter = _seccomp.Filter() if config["seccomp"] else None
        self.children: dict[int, int] = {}  # pid -> request id
        for slot in self.slots.values():
            slot["cgroup_fds"] = [os.open(path, os.O_WRONLY) for path in slot["cgroup"]]
            slot["ns"] = []

    def send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        data = json.dumps(message).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def build(self, index: int) -> None:
        slot = self.slots[index]
        for fd, _ in slot["ns"]:
            os.close(fd)
        slot["ns"] = []
        if self.plan is not None:
            slot["ns"] = build_namespaces(self.plan, slot)

    def build_all(self) -> None:
        errors = {}
        for index in self.slots:
            try:
                self.build(index)
            except OSError as exc:
                errors[index] = str(exc)
        self.send({"op": "ready", "errors": errors})

    def rebuild(self, request: dict) -> None:
        try:
            self.build(request["slot"])
        except OSError as exc:
            self.send({"id": request["id"], "error": str(exc)})
            return
        self.send({"id": request["id"], "rebuilt": True})

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
                    _child(request, fds, slot, self, err_w)
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
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ident = self.children.pop(pid, None)
            if ident is not None:
                self.send({"id": ident, "exit": status, "cpu": usage.ru_utime + usage.ru_stime})

    def handle(self, data: bytes, fds: list[int]) -> None:
        request = json.loads(data)
        if request.get("op") == "rebuild":
            for fd in fds:
                os.close(fd)
            self.rebuild(request)
        else:
            self.spawn(request, fds)

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
                    self.handle(data, fds)
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
    spawner = Spawner(sock, config)
    spawner.build_all()
    spawner.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
