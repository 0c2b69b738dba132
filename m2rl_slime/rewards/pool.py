"""A persistent, pre-warmed pool of verifier processes with a hard per-item deadline.

Why processes: sympy (behind math-verify) can run for minutes inside C-level big-integer code, and
neither `signal.alarm` (main thread only, fires between bytecodes) nor a thread timeout (the thread keeps
burning a core) stops it. Each worker here is a child process; when an item passes its deadline the
worker is SIGKILLed and replaced, and the item scores 0 with reason `timeout`. A worker that dies on its
own (segfault, OOM kill) is replaced too and its item scores 0 with reason `worker_crash`.

The pool is thread-safe: `submit` returns a `concurrent.futures.Future`, which async callers wrap with
`asyncio.wrap_future`. One dispatcher thread owns the workers and their pipes.
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .pool_worker import Reply, Task
from .result import Reason, Result

__all__ = ["Reply", "Task", "VerifierPool", "pool_stats", "shared_pool"]

logger = logging.getLogger(__name__)

_MAX_STARTUP_FAILURES = 3


def _resolve(future: Future, reply: Reply) -> None:
    """Complete a caller's future from a worker reply."""
    if reply.config_error is not None:
        future.set_exception(ConfigError(reply.config_error))
    elif reply.error is not None:
        future.set_exception(reply.error)
    else:
        future.set_result(reply.result)


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: multiprocessing.connection.Connection
    ready: bool = False
    task_id: int | None = None
    deadline: float = 0.0


@dataclass
class _Pending:
    task: Task
    deadline_s: float
    future: Future


class VerifierPool:
    """Process pool with per-item hard deadlines. Create once per process; call `close()` at exit.

    Args:
        workers: Number of worker processes.
        warm: Domains to pre-warm in each worker (imports and one verification at start).
        memory_mb: Address-space limit per worker (0 = none); a runaway parse fails with MemoryError.
    """

    def __init__(
        self,
        workers: int,
        *,
        warm: tuple[str, ...] = ("math",),
        memory_mb: int = 4096,
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._size = workers
        self._warm = warm
        self._memory_mb = memory_mb
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[int, _Pending]] = collections.deque()
        self._inflight: dict[int, _Pending] = {}
        self._ids = itertools.count()
        self._workers: list[_Worker] = []
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._closed = False
        self._env = dict(os.environ)  # respawned workers see the environment the pool was created with
        self._startup_failures = 0
        self._broken: str | None = None
        self.stats = collections.Counter()
        for _ in range(workers):
            self._workers.append(self._spawn())
        self._thread = threading.Thread(target=self._dispatch, name="m2rl-verifier-pool", daemon=True)
        self._thread.start()

    # -- public API -------------------------------------------------------------------------
    def submit(self, task: Task, deadline_s: float) -> Future:
        """Queue a task.

        The future resolves to a `Result`; a verifier that raises gives `internal_error`, a timeout or a
        crash their own reasons. It raises `ConfigError` for a settings problem (a verifier's ConfigError,
        workers that cannot start), and the verifier's own exception for a task with `raise_on_error`.
        """
        future: Future = Future()
        with self._lock:
            if self._broken:
                future.set_exception(ConfigError(self._broken))
                return future
            if self._closed:
                raise RuntimeError("VerifierPool is closed")
            self._queue.append((next(self._ids), _Pending(task, deadline_s, future)))
        self._wake()
        return future

    def close(self) -> None:
        """Stop the dispatcher and every worker; pending items resolve to `internal_error`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        self._thread.join(timeout=10)

    @property
    def size(self) -> int:
        return self._size

    # -- internals --------------------------------------------------------------------------
    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"x")
        except OSError:
            pass

    def _spawn(self) -> _Worker:
        # A fresh interpreter via subprocess (fork+exec): safe in threaded hosts such as Ray actors, and,
        # unlike multiprocessing's spawn/forkserver, it never re-imports the host's __main__ module.
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(self._env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "m2rl_slime.rewards._worker",
            str(child.fileno()),
            str(self._memory_mb),
            *self._warm,
        ]
        proc = subprocess.Popen(cmd, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, env=env)
        child.close()
        self.stats["spawned"] += 1
        return _Worker(proc, multiprocessing.connection.Connection(parent.detach()))

    def _replace(self, worker: _Worker) -> None:
        if worker.process.poll() is None:
            worker.process.kill()
        try:
            worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.error("verifier worker %s did not exit after SIGKILL", worker.process.pid)
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._spawn()

    def _finish(self, worker: _Worker, reply: Reply) -> None:
        pending = self._inflight.pop(worker.task_id, None)
        worker.task_id = None
        if pending is not None and not pending.future.done():
            _resolve(pending.future, reply)

    def _assign(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if not worker.ready or worker.task_id is not None:
                continue
            with self._lock:
                if not self._queue:
                    return
                task_id, pending = self._queue.popleft()
            if not pending.future.set_running_or_notify_cancel():
                continue
            try:
                worker.conn.send((task_id, pending.task))
            except Exception as exc:  # unpicklable task or dead pipe
                pending.future.set_result(Result.fail(Reason.INTERNAL_ERROR, error=f"cannot send task: {exc}"))
                if not isinstance(exc, (TypeError, AttributeError, ValueError)):
                    self._replace(worker)
                continue
            self._inflight[task_id] = pending
            worker.task_id = task_id
            worker.deadline = now + pending.deadline_s

    def _on_readable(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            # The worker died on its own: segfault, OOM kill, os._exit in a verifier.
            try:
                code = worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            if worker.task_id is not None:
                self.stats["crashes"] += 1
                logger.warning("verifier worker %s died (exit code %s); replacing it", worker.process.pid, code)
                self._finish(worker, Reply(Result.fail(Reason.WORKER_CRASH, exit_code=code)))
            elif not worker.ready:
                self._startup_failures += 1
                if self._startup_failures >= _MAX_STARTUP_FAILURES:
                    self._fail_startup(code)
                    return
            self._replace(worker)
            return
        tag, payload = message
        if tag == "ready":
            worker.ready = True
            self._startup_failures = 0
            return
        if tag == worker.task_id:
            self._finish(worker, payload)

    def _fail_startup(self, code: int | None) -> None:
        """Workers keep dying before they are ready: stop, and make every caller see why."""
        message = (
            f"verifier workers exit during start-up (exit code {code}, {self._startup_failures} times in a row); "
            f"run `{sys.executable} -m m2rl_slime.rewards._worker` to see the error (is m2rl_slime and its "
            "dependencies importable in this environment?)"
        )
        logger.error(message)
        with self._lock:
            self._closed = True
            self._broken = message

    def _expire(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.task_id is not None and now >= worker.deadline:
                pending = self._inflight.get(worker.task_id)
                deadline_s = pending.deadline_s if pending else 0.0
                self.stats["timeouts"] += 1
                logger.info(
                    "verification passed its %.1fs deadline; killing worker %s", deadline_s, worker.process.pid
                )
                self._finish(worker, Reply(Result.fail(Reason.TIMEOUT, deadline_s=deadline_s)))
                self._replace(worker)

    def _dispatch(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._closed:
                        break
                self._assign()
                busy = [w.deadline for w in self._workers if w.task_id is not None]
                timeout = max(0.0, min(busy) - time.monotonic()) if busy else None
                by_conn = {w.conn: w for w in self._workers}
                ready = multiprocessing.connection.wait([self._wake_r, *by_conn], timeout=timeout)
                for conn in ready:
                    if conn is self._wake_r:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    else:
                        self._on_readable(by_conn[conn])
                self._expire()
        except Exception:
            logger.exception("verifier pool dispatcher failed")
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            self._closed = True
            leftovers = [p for _, p in self._queue] + list(self._inflight.values())
            self._queue.clear()
            self._inflight.clear()
        for pending in leftovers:
            if not pending.future.done():
                if self._broken:
                    pending.future.set_exception(ConfigError(self._broken))
                else:
                    pending.future.set_result(Result.fail(Reason.INTERNAL_ERROR, error="verifier pool closed"))
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(timeout=5)
            worker.conn.close()


_shared: dict[tuple, VerifierPool] = {}
_shared_lock = threading.Lock()


def shared_pool(workers: int, *, warm: tuple[str, ...] = ("math",), memory_mb: int = 4096) -> VerifierPool:
    """The process-wide pool for these settings, created on first use and closed at interpreter exit."""
    key = (workers, warm, memory_mb, os.getpid())
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None:
            pool = VerifierPool(workers, warm=warm, memory_mb=memory_mb)
            _shared[key] = pool
            if len(_shared) == 1:
                import atexit

                atexit.register(_close_all)
        return pool


def pool_stats() -> collections.Counter:
    """The counters (spawned, timeouts, crashes) summed over this process's shared pools."""
    stats: collections.Counter = collections.Counter()
    with _shared_lock:
        pools = list(_shared.values())
    for pool in pools:
        stats.update(pool.stats)
    return stats


def _close_all() -> None:
    with _shared_lock:
        pools = list(_shared.values())
        _shared.clear()
    for pool in pools:
        pool.close()
