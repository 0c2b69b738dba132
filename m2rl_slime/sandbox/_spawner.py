"""The spawner and the slot keepers: small single-threaded helpers that own the slots' namespaces and start programs.

Process layout: server -> spawner (one) -> a keeper per slot -> the slot's programs.

Forking a Python process costs time proportional to its size (page tables, copy-on-write faults,
teardown before exec): ~1.4 ms for this ~10 MB process against ~4 ms for the 40 MB server, per
program. So programs are forked from here, never from the server. The spawner forks one **keeper**
per slot (at start, on a ``keeper`` request). A keeper joins the slot's cgroups once, exempts itself
from the OOM killer where it may (``oom_score_adj`` -1000, with CAP_SYS_RESOURCE), builds the slot's namespaces by entering them itself:
network (only a down loopback), UTS (hostname ``sandbox``) and mount, whose root is the minimal root of
`_rootfs`; it then serves spawn requests sent by the server directly over its own SOCK_SEQPACKET
socket, with the program's stdin/stdout/stderr attached (SCM_RIGHTS).

Its children are born in the slot's cgroups and namespaces: a program is never moved between
cgroups. (Moving a task write-locks the kernel's cgroup thread-group semaphore, which waits for an
RCU grace period, ~10 ms, unless another move happened just before; forking inside the cgroup needs
no such lock.) Per program the child gets fresh mount, IPC and cgroup namespaces (so SysV/POSIX IPC
objects never outlive a run and ``/proc`` is its own), mounts ``/proc`` inside its fresh PID
namespace, sets ``oom_score_adj`` 1000 (the OOM killer takes programs first, their keeper last),
applies rlimits, pins its CPU, drops to the slot uid, sets a parent-death signal and
``no_new_privs``, installs the seccomp filter and execs. By default (``spawn: clone``) the C
extension `_native` does all of that in a child made with clone(CLONE_VM | CLONE_VFORK) and the
namespaces: nothing of the keeper is copied (a fork of this ~10 MB image cost ~0.5 ms of the
keeper's CPU and ~0.5 ms of copy-on-write faults in the child per program). ``spawn: fork``, or
an install without the extension, forks and takes the same steps in Python (`_child`). The reply
carries the pid and a pidfd (so the server can kill it); the exit status and CPU time follow as a
message. The keeper's own usage in the slot's cgroup is taken out of each verdict by the server
(`spawn`): its CPU time (read from ``/proc/<keeper>/schedstat``) is subtracted from the cgroup's, and
its anonymous memory is added to the cgroup's limit.

Started as a script (``python -I -S _spawner.py``) so it imports only the standard library and its
sibling modules. The spawner dies with the server, keepers with the spawner, programs with their
keeper (parent-death signals). A keeper whose socket closes kills and reaps its programs and exits;
the spawner, once its own socket closes, waits for its keepers (so the slot cgroups are empty when
the server removes them).

Protocol (JSON messages, one per datagram):
  spawner start-up  -> {"op": "ready"}
  spawner request   {"op": "keeper", "id", "slot"} + 1 fd (the keeper's end of its socket; replaces the
                    slot's keeper if there is one)
  spawner replies   {"id", "pid"} | {"id", "error"}
  keeper request    {"op": "spawn", "id", "argv", "env", "cwd", "limits": [cpu, as|null, nproc, fsize, nofile,
                    stack]} + 3 fds (stdin, stdout, stderr)
  keeper replies    {"id", "pid"} + 1 fd (pidfd) | {"id", "error"} | {"id", "exit": wait status, "cpu": seconds}
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable

if __package__:
    from . import _rootfs, _seccomp
    from . import _syscalls as sc
else:  # run as a script (python -I -S): the package itself is not importable, its sibling modules are
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _rootfs
    import _seccomp
    import _syscalls as sc
try:  # the C extension (setup.py); optional: without it keepers fork
    if __package__:
        from . import _native
    else:
        import _native
except ImportError:
    _native = None

MAX_MESSAGE = 1 << 20
OOM_SCORE_PROGRAM = 1000  # programs are the OOM killer's first choice (raising needs no privilege)
_OOM_SCORE_PROGRAM = str(OOM_SCORE_PROGRAM).encode()
KEEPER_EXIT_WAIT_S = 10.0
_RUN_NS = sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWCGROUP


def _send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 512):
                return
        except BlockingIOError:
            return


class _Requests:
    """The request loop of the spawner and of a keeper: messages (with up to `max_fds` descriptors each)
    from `sock`, and a wake-up on SIGCHLD; `fds` are the loop's own descriptors (a fork must close them)."""

    def __init__(self, sock: socket.socket, max_fds: int):
        self.sock, self.max_fds = sock, max_fds
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.fds = [self.wake_r, wake_w, self.selector.fileno()]

    def serve(self, handle: Callable[[dict, list[int]], None], reap: Callable[[], None]) -> None:
        """Pass each request to `handle` and call `reap` after every wake-up, until the peer closes its end."""
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is not self.sock:
                    _drain(self.wake_r)
                    continue
                try:
                    data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, self.max_fds)
                except ConnectionError:
                    data, fds = b"", []
                if not data:
                    return  # the server closed its end
                handle(json.loads(data), fds)
            reap()


def _wait_for_children(pids: Iterable[int], timeout: float) -> None:
    """Reap `pids`, killing those still alive after `timeout` seconds."""
    waiting = set(pids)
    deadline = time.monotonic() + timeout
    while waiting:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                waiting.discard(pid)
        if waiting and time.monotonic() > deadline:
            for pid in waiting:
                os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        if waiting:
            time.sleep(0.005)


def _protect_from_oom() -> bool:
    """Make this process exempt from the OOM killer (needs CAP_SYS_RESOURCE); False where that is not allowed."""
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("-1000")
        return True
    except OSError:
        return False


def _rlimits(limits: list) -> list[tuple[int, tuple[int, int]]]:
    """The (resource, (soft, hard)) pairs a program gets, from a spawn request's ``limits``."""
    cpu, address_space, nproc, fsize, nofile, stack = limits
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
    return pairs


def _child(request: dict, rlimits: list, fds: list[int], slot: dict, keeper: Keeper, errpipe: int) -> None:
    """In the forked child: set up and exec, or report the failure on `errpipe`. Never returns.

    Everything it needs was prepared before the fork: each Python object it touches here costs a
    copy-on-write fault of its page in the keeper's image, until exec replaces that image.
    """
    try:
        for signo in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; programs get the defaults
            signal.signal(signo, signal.SIG_DFL)
        for index, fd in enumerate(fds):
            os.dup2(fd, index)
        if keeper.namespaces:
            sc.unshare(_RUN_NS)
            sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, None)
        else:
            os.setsid()
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)  # the OOM killer takes programs before their keeper
        os.write(fd, _OOM_SCORE_PROGRAM)
        os.close(fd)
        for which, value in rlimits:
            resource.setrlimit(which, value)
        if slot["cpu"] is not None:
            os.sched_setaffinity(0, (slot["cpu"],))
        if slot["drop"]:
            os.setgroups(())
            os.setresgid(slot["uid"], slot["uid"], slot["uid"])
            os.setresuid(slot["uid"], slot["uid"], slot["uid"])
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if keeper.filter is not None:
            keeper.filter.install(sc.prctl)
        os.chdir(request["cwd"])
        os.execve(request["argv"][0], request["argv"], request["env"])
    except BaseException as exc:  # noqa: BLE001 - anything that stops the exec is reported, then exit
        os.write(errpipe, f"{type(exc).__name__}: {exc}".encode()[:4000])
    os._exit(127)


class Keeper:
    """One slot's keeper (a forked child of the spawner): lives in the slot's cgroups and namespaces, forks programs.

    Args:
        sock: Its socket to the server.
        slot: The slot's settings (uid, CPU, privilege drop).
        filter: The seccomp filter to install in programs, or None.
        pidns_fd: A descriptor of the keeper's own PID namespace (programs get a fresh one), or -1.
        namespaces: Whether the keeper entered the slot's namespaces (else programs get a new session only).
        oom_protected: Whether the keeper is exempt from the OOM killer (``oom_score_adj`` -1000).
        clone: Start programs with the C extension (`_clone`) instead of forking (`_child`).
    """

    def __init__(self, sock: socket.socket, slot: dict, filter: _seccomp.Filter | None, pidns_fd: int, *,
                 namespaces: bool, oom_protected: bool, clone: bool = False):  # fmt: skip
        self.sock, self.slot, self.filter, self.pidns_fd = sock, slot, filter, pidns_fd
        self.namespaces, self.oom_protected, self.clone = namespaces, oom_protected, clone
        self.children: dict[int, int] = {}  # pid -> request id

    def spawn(self, request: dict, fds: list[int]) -> None:
        for fd in fds:  # received descriptors are inheritable: only their copies at 0, 1, 2 reach the program
            os.set_inheritable(fd, False)
        if request.get("op") != "spawn" or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            _send(self.sock, {"id": request.get("id"), "error": "malformed spawn request"})
            return
        try:
            rlimits = _rlimits(request["limits"])
        except (KeyError, TypeError, ValueError) as exc:
            for fd in fds:
                os.close(fd)
            _send(self.sock, {"id": request.get("id"), "error": f"malformed spawn request: {exc}"})
            return
        if self.clone:
            try:
                pid, error = self._clone(request, rlimits, fds)
            except OSError as exc:  # the clone itself failed
                _send(self.sock, {"id": request["id"], "error": f"spawn failed: {exc}"})
                return
            except (TypeError, ValueError) as exc:  # e.g. a NUL byte in an argument, as the forked child reports it
                _send(self.sock, {"id": request["id"], "error": f"{type(exc).__name__}: {exc}"})
                return
            finally:
                for fd in fds:
                    os.close(fd)
            self._started(request["id"], pid, error)
            return
        err_r, err_w = os.pipe()
        try:
            if self.pidns_fd >= 0:
                sc.unshare(sc.CLONE_NEWPID)  # the child becomes PID 1 of a fresh PID namespace
            try:
                pid = os.fork()
                if pid == 0:
                    os.close(err_r)
                    _child(request, rlimits, fds, self.slot, self, err_w)
            finally:
                if self.pidns_fd >= 0:
                    sc.setns(self.pidns_fd, sc.CLONE_NEWPID)
            os.close(err_w)
            err_w = -1
            error = os.read(err_r, 4096)  # EOF once exec succeeded (the pipe is close-on-exec)
        except OSError as exc:
            _send(self.sock, {"id": request["id"], "error": f"spawn failed: {exc}"})
            return
        finally:
            os.close(err_r)
            if err_w >= 0:
                os.close(err_w)
            for fd in fds:
                os.close(fd)
        if error:
            os.waitpid(pid, 0)
        self._started(request["id"], pid, error)

    def _clone(self, request: dict, rlimits: list, fds: list[int]) -> tuple[int, bytes]:
        """Start the program with `_native.spawn` (the same steps as `_child`, no copy of this process).

        Returns (pid, b"") once it exec'd, or (0, the reason) if a step before exec failed (already reaped).
        """
        flags = 0
        if self.namespaces:
            flags = _RUN_NS | (sc.CLONE_NEWPID if self.pidns_fd >= 0 else 0)
        slot, argv = self.slot, request["argv"]
        pid, stage, code = _native.spawn(
            argv, [f"{key}={value}" for key, value in request["env"].items()], request["cwd"], tuple(fds), flags,
            bool(flags & sc.CLONE_NEWPID), _OOM_SCORE_PROGRAM, [(which, soft, hard) for which, (soft, hard) in rlimits],
            -1 if slot["cpu"] is None else slot["cpu"], slot["uid"] if slot["drop"] else -1,
            self.filter.code if self.filter is not None else None,
        )  # fmt: skip
        if stage is None:
            return pid, b""
        if stage in ("execve", "chdir"):  # worded as os.execve / os.chdir would word it
            exc = OSError(code, os.strerror(code), argv[0] if stage == "execve" else request["cwd"])
        else:
            exc = OSError(code, f"{stage}: {os.strerror(code)}")
        return 0, f"{type(exc).__name__}: {exc}".encode()

    def _started(self, ident: int, pid: int, error: bytes) -> None:
        """Answer a spawn request: the pid and a pidfd, or why the program did not start."""
        if error:
            _send(self.sock, {"id": ident, "error": error.decode(errors="replace")})
            return
        self.children[pid] = ident
        pidfd = os.pidfd_open(pid)
        try:
            _send(self.sock, {"id": ident, "pid": pid}, (pidfd,))
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
                _send(self.sock, {"id": ident, "exit": status, "cpu": usage.ru_utime + usage.ru_stime})

    def serve(self) -> None:
        """Serve spawn requests until the server closes the socket; then kill and reap the programs."""
        requests = _Requests(self.sock, 3)
        try:
            requests.serve(self.spawn, self.reap)
        finally:
            for pid in self.children:
                os.kill(pid, signal.SIGKILL)
            _wait_for_children(self.children, KEEPER_EXIT_WAIT_S)


def _keeper_main(plan: dict | None, slot: dict, config: dict, sock_fd: int, ready_w: int,
                 filter: _seccomp.Filter | None) -> None:  # fmt: skip
    """In a forked keeper: join the slot's cgroups, enter its namespaces, report on `ready_w`, serve. Never returns."""
    code = 0
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the spawner
        for path in slot["cgroup"]:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # once per keeper: its programs are born here, never moved
            finally:
                os.close(fd)
        protect = _protect_from_oom()
        pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY) if config["pidns"] else -1
        if plan is not None:
            sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWUTS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
            socket.sethostname("sandbox")
            _rootfs.build_root(plan, slot["staging"], {"/tmp": slot["tmp"], "/dev/shm": slot["shm"]}, slot["uid"])
        sock = socket.socket(fileno=sock_fd)
        sock.set_inheritable(False)  # programs must never reach their keeper
        keeper = Keeper(sock, slot, filter, pidns_fd, namespaces=plan is not None, oom_protected=protect,
                        clone=config["clone"])  # fmt: skip
    except BaseException as exc:  # noqa: BLE001 - report anything to the spawner, then exit
        os.write(ready_w, f"{type(exc).__name__}: {exc}".encode()[:4000])
        os._exit(3)
    os.write(ready_w, b"ok")
    os.close(ready_w)
    try:
        keeper.serve()
    except BaseException:  # noqa: BLE001 - a keeper never returns into the spawner's code
        code = 4
    os._exit(code)


class Spawner:
    def __init__(self, sock: socket.socket, config: dict):
        self.sock = sock
        self.config = config
        self.plan = config["plan"]
        self.slots = {int(k): v for k, v in config["slots"].items()}
        self.filter = _seccomp.Filter() if config["seccomp"] else None
        self.keepers: dict[int, int] = {}  # slot -> keeper pid
        self._own_fds: list[int] = [sock.fileno()]  # closed in every keeper

    def keeper(self, request: dict, fds: list[int]) -> None:
        """Start the slot's keeper (replacing the old one) and answer with its pid or the reason it failed."""
        index = request["slot"]
        old = self.keepers.pop(index, None)
        if old is not None:
            try:
                os.kill(old, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _wait_for_children([old], KEEPER_EXIT_WAIT_S)
        if len(fds) != 1 or index not in self.slots:
            for fd in fds:
                os.close(fd)
            _send(self.sock, {"id": request["id"], "error": "malformed keeper request"})
            return
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(ready_r)
            for fd in self._own_fds:
                os.close(fd)
            _keeper_main(self.plan, self.slots[index], self.config, fds[0], ready_w, self.filter)
        os.close(ready_w)
        os.close(fds[0])
        try:
            message = os.read(ready_r, 4096).decode(errors="replace")
        finally:
            os.close(ready_r)
        if message != "ok":
            _wait_for_children([pid], KEEPER_EXIT_WAIT_S)
            error = f"building sandbox slot {index} failed: {message or 'its keeper died'}"
            _send(self.sock, {"id": request["id"], "error": error})
            return
        self.keepers[index] = pid
        _send(self.sock, {"id": request["id"], "pid": pid})

    def reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for index, keeper in list(self.keepers.items()):
                if keeper == pid:
                    del self.keepers[index]

    def handle(self, request: dict, fds: list[int]) -> None:
        if request.get("op") == "keeper":
            self.keeper(request, fds)
            return
        for fd in fds:
            os.close(fd)
        _send(self.sock, {"id": request.get("id"), "error": f"unknown op {request.get('op')!r}"})

    def serve(self) -> None:
        requests = _Requests(self.sock, 1)
        self._own_fds += requests.fds
        _send(self.sock, {"op": "ready"})
        try:
            requests.serve(self.handle, self.reap)
        finally:
            _wait_for_children(self.keepers.values(), KEEPER_EXIT_WAIT_S)  # they exit once the server let go


def main() -> int:
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    config = json.loads(sys.argv[1])
    if os.getppid() != config["parent"]:
        return 1
    if config["clone"] and _native is None:
        print("sandbox spawner: the C extension _native (clone) was asked for but cannot be imported", file=sys.stderr)
        return 5
    sock = socket.socket(fileno=config["sock"])
    sock.set_inheritable(False)
    Spawner(sock, config).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
