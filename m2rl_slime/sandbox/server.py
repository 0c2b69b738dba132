"""A sandbox server with SandboxFusion's HTTP API, backed by the embedded executor.

Endpoints: ``POST /run_code`` (SandboxFusion's request/response JSON), ``GET /v1/ping`` (``"pong"``, as
SandboxFusion answers) and ``GET /health`` (JSON: isolation mode, ``slots_total`` of the whole server
(clients size their in-flight requests to it), ``features`` (``cpu_timeout``: the CPU-time request
extension), counters). A malformed request gets 422 and an unsupported one (language, timeout) 400, with
``{"detail": ...}`` like FastAPI; a server without a slot in service answers 503 and exits (status 1),
so a supervisor restarts it.

Process model: one listening socket (TCP, loopback by default, or a Unix socket), shared by
``processes`` worker processes; each worker owns an executor with its share of the ``workers`` slots
(an asyncio loop spawns ~500 programs/s, so big hosts need several). SIGTERM/SIGINT stop accepting,
let in-flight runs finish (up to the grace period), then exit 0. At start every worker removes the
directories of dead predecessors (a server killed with SIGKILL cannot clean up after itself).

Exit statuses: 0 after a signal, 1 when every slot failed, 2 when the configuration cannot work
(`SandboxConfigError`: the message names the fix), 3 when the executor could not start otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
from typing import Any

from aiohttp import web

from .. import __version__
from ..errors import SandboxError
from . import frames
from .base import RunSpec, SandboxConfigError
from .local import ExecutorSettings, LocalExecutor

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 256 << 20
_EXECUTOR: web.AppKey[LocalExecutor] = web.AppKey("executor", LocalExecutor)
_MAX_QUEUE: web.AppKey[int] = web.AppKey("max_queue", int)
_TOTAL: web.AppKey[int] = web.AppKey("slots_total", int)
FEATURES = ("cpu_timeout",)


async def answer_run(executor: LocalExecutor, max_queue: int, payload: bytes) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for a ``/run_code`` request body: the same for HTTP and the frame socket."""
    try:
        spec = RunSpec.from_json(json.loads(payload))
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors too
        return 422, {"detail": f"invalid /run_code request: {exc}"}
    try:
        executor.check(spec)
    except ValueError as exc:
        return 400, {"detail": str(exc)}
    if executor.waiting >= max_queue:  # overloaded: tell the client to back off (429)
        return 429, {"detail": f"busy: {executor.waiting} runs are waiting for a slot"}
    try:
        result = await executor.run(spec)
    except SandboxError as exc:  # no slot in service: the server's state, not the program's fault
        return 503, {"detail": str(exc)}
    return 200, result.to_json()


def health_body(executor: LocalExecutor, slots_total: int) -> dict[str, Any]:
    """The ``/health`` object."""
    info = executor.info
    return {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "isolation": info.mode if info else None,
        "network_isolated": info.network_isolated if info else None,
        "languages": list(executor.languages),
        "slots_total": slots_total,
        "features": list(FEATURES),
        **executor.stats(),
    }


async def _run_code(request: web.Request) -> web.Response:
    status, body = await answer_run(request.app[_EXECUTOR], request.app[_MAX_QUEUE], await request.read())
    return web.json_response(body, status=status, dumps=json.dumps)


async def _ping(_request: web.Request) -> web.Response:
    return web.json_response("pong")


async def _health(request: web.Request) -> web.Response:
    return web.json_response(health_body(request.app[_EXECUTOR], request.app[_TOTAL]))


def frame_answer(executor: LocalExecutor, max_queue: int, slots_total: int) -> frames.Answer:
    """The frame socket's request handler (`frames.FrameServer`): the HTTP endpoints' answers, framed."""

    async def answer(op: int, payload: bytes) -> tuple[int, bytes]:
        if op == frames.OP_RUN:
            status, body = await answer_run(executor, max_queue, payload)
        elif op == frames.OP_HEALTH:
            status, body = 200, health_body(executor, slots_total)
        else:
            status, body = 200, "pong"
        return status, json.dumps(body).encode()

    return answer


def create_app(
    executor: LocalExecutor, max_queue: int | None = None, slots_total: int | None = None
) -> web.Application:
    """The aiohttp application serving one started executor.

    Args:
        executor: A started executor.
        max_queue: Requests allowed to wait for a slot before new ones get 429 (default 4 per slot).
        slots_total: Slots of the whole server (all its processes); default: this executor's.
    """
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    slots = executor.stats()["slots"]
    app[_EXECUTOR] = executor
    app[_MAX_QUEUE] = max_queue if max_queue is not None else 4 * max(1, slots)
    app[_TOTAL] = slots_total or slots
    app.router.add_post("/run_code", _run_code)
    app.router.add_get("/v1/ping", _ping)
    app.router.add_get("/health", _health)
    return app


def bind_socket(host: str, port: int, unix_path: str | None) -> socket.socket:
    """Create the listening socket (before forking workers, so they share it)."""
    if unix_path:
        if os.path.exists(unix_path):
            os.unlink(unix_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(unix_path)
        os.chmod(unix_path, 0o600)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


async def _serve_async(
    sock: socket.socket,
    executor: LocalExecutor,
    parent_pid: int | None,
    grace_s: float,
    max_queue: int | None,
    slots_total: int,
    frame_sock: socket.socket | None = None,
) -> int:
    app = create_app(executor, max_queue, slots_total)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=grace_s)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    loop = asyncio.get_running_loop()
    listener = None
    if frame_sock is not None:
        listener = frames.FrameListener(frame_answer(executor, app[_MAX_QUEUE], app[_TOTAL]))
        await listener.start(sock=frame_sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    failed = []
    executor.on_no_slots = lambda: (failed.append(True), stop.set())
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                if parent_pid is not None and os.getppid() != parent_pid:
                    logger.warning("sandbox server: parent process %d is gone; shutting down", parent_pid)
                    stop.set()
    finally:  # both let their in-flight runs finish, side by side (one grace period in all)
        await asyncio.gather(runner.cleanup(), *([listener.stop(grace_s)] if listener is not None else []))
    if failed:
        logger.error("sandbox worker %d: no slot is in service any more; exiting so that it is restarted", os.getpid())
    return 1 if failed else 0


def _worker(
    sock: socket.socket, settings: ExecutorSettings, parent_pid: int | None, max_queue: int | None, slots_total: int,
    frame_sock: socket.socket | None = None,
) -> int:  # fmt: skip
    executor = LocalExecutor(settings)
    try:
        executor.start()
    except Exception as exc:  # noqa: BLE001 - boundary: a worker that cannot start says why and exits 2 or 3
        executor.close()
        logger.error("sandbox worker %d cannot start: %s", os.getpid(), exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2 if isinstance(exc, SandboxConfigError) else 3
    try:
        grace = 3 * settings.max_timeout_s + 5.0
        return asyncio.run(_serve_async(sock, executor, parent_pid, grace, max_queue, slots_total, frame_sock))
    finally:
        executor.close()


def _split(settings: ExecutorSettings, processes: int) -> list[ExecutorSettings]:
    total = settings.workers or len(os.sched_getaffinity(0))
    processes = max(1, min(processes, total))
    shares = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    # Slots of one server take consecutive CPUs; where they start depends on the server's pid, so that
    # several small servers on one host (e.g. embedded ones) do not all crowd onto the first CPUs.
    cpu_base = os.getpid() % len(os.sched_getaffinity(0))
    out, offset = [], 0
    for share in shares:
        uid_base = None if settings.uid_base is None else settings.uid_base + offset
        out.append(dataclasses.replace(settings, workers=share, uid_base=uid_base, slot_offset=cpu_base + offset))
        offset += share
    return out


def serve(
    settings: ExecutorSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    unix_path: str | None = None,
    processes: int = 1,
    parent_pid: int | None = None,
    owned_dir: str | None = None,
    max_queue: int | None = None,
    frames_path: str | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT (or until `parent_pid` exits). Returns the exit status.

    `frames_path`: also listen on this Unix socket with the embedded backend's framed protocol (`frames`).

    `owned_dir` (the embedded backend's private directory) is removed on exit when `parent_pid` is
    gone, so nothing is left behind even when the parent died without cleaning up (a live parent
    removes it itself, after reading the log).
    """
    sock = bind_socket(host, port, unix_path)
    frame_sock = bind_socket(host, 0, frames_path) if frames_path else None
    where = unix_path or f"http://{host}:{sock.getsockname()[1]}"
    shares = _split(settings, processes)
    total = sum(s.workers or 0 for s in shares)
    logger.info("sandbox server on %s: %d process(es), %d slots", where, len(shares), total)
    try:
        if len(shares) == 1:
            return _worker(sock, shares[0], parent_pid, max_queue, total, frame_sock)
        return _supervise(sock, shares, parent_pid, max_queue, total, frame_sock)
    finally:
        sock.close()
        if frame_sock is not None:
            frame_sock.close()
        for path in (unix_path, frames_path):
            if path and os.path.exists(path):
                os.unlink(path)
        if owned_dir and parent_pid is not None and os.getppid() != parent_pid:
            shutil.rmtree(owned_dir, ignore_errors=True)


def _start_worker(sock: socket.socket, settings: ExecutorSettings, max_queue: int | None, total: int,
                  frame_sock: socket.socket | None) -> int:  # fmt: skip
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = _worker(sock, settings, os.getppid(), max_queue, total, frame_sock)
        finally:
            os._exit(code)
    return pid


def _supervise(
    sock: socket.socket, shares: list[ExecutorSettings], parent_pid: int | None, max_queue: int | None, total: int,
    frame_sock: socket.socket | None = None,
) -> int:  # fmt: skip
    """Fork one worker per share; restart crashed ones; forward SIGTERM/SIGINT; exit when all are gone.

    Returns 0 after a signal, else the status of the worker that made it give up (2 or 3 for a worker that
    could not start, 1 after too many crashes).
    """
    stopping = False

    def on_signal(_signo: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers = {_start_worker(sock, share, max_queue, total, frame_sock): share for share in shares}
    restarts: list[float] = []
    signalled, result = False, 0
    while workers:
        if parent_pid is not None and os.getppid() != parent_pid:
            stopping = True
        if stopping and not signalled:
            for pid in workers:
                os.kill(pid, signal.SIGTERM)
            signalled = True
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.2)
            continue
        share = workers.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if share is None or stopping:
            continue
        restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
        if code in (2, 3) or len(restarts) > 5:
            logger.error("sandbox worker %d exited with %d; giving up (%d restarts in 60 s)", pid, code, len(restarts))
            stopping, result = True, code if code in (2, 3) else 1
            continue
        logger.error("sandbox worker %d exited with %d; restarting it", pid, code)
        workers[_start_worker(sock, share, max_queue, total, frame_sock)] = share
    return result
