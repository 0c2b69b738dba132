"""What runs inside a verifier worker process: the task and reply types, and the worker's serve loop.

The parent side (`VerifierPool`, deadlines, respawns) is `pool.py`; the process entry point is `_worker.py`
(``python -m m2rl_slime.rewards._worker FD MEMORY_MB [DOMAIN ...]``). Both sides pickle these classes, so
they live in a module that is never ``__main__``.
"""

from __future__ import annotations

import logging
import multiprocessing.connection
import os
from dataclasses import dataclass
from typing import Any

from ..domains import SPECS
from ..errors import ConfigError
from .result import Reason, Result

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Task:
    """One verification: a domain's pure verifier applied to (response, label, metadata)."""

    domain: str
    response: str
    label: Any
    metadata: dict[str, Any]
    config: Any = None
    verifier: str | None = None  # dotted path of the verify function (default: the domain's spec)
    raise_on_error: bool = False  # send back what the verifier raised, to be raised in the caller


@dataclass(frozen=True, slots=True)
class Reply:
    """A worker's answer to one task: the verdict, with any error beside it (never inside its details).

    Attributes:
        result: The verdict (`internal_error` when the verifier raised).
        config_error: A settings problem (the verifier raised `ConfigError`): the pool raises it in the
            caller as a `ConfigError`.
        error: What the verifier raised, for a task with `raise_on_error` (None otherwise).
    """

    result: Result
    config_error: str | None = None
    error: BaseException | None = None


def _run_task(task: Task) -> Reply:
    from .registry import get_verifier, verifier_at

    try:
        verify = verifier_at(task.verifier) if task.verifier else get_verifier(task.domain)
        if task.config is None:
            return Reply(verify(task.response, task.label, task.metadata))
        return Reply(verify(task.response, task.label, task.metadata, config=task.config))
    except ConfigError as exc:  # a settings problem: raised in the caller
        return Reply(Result.fail(Reason.INTERNAL_ERROR), config_error=str(exc))
    except MemoryError:
        return Reply(Result.fail(Reason.PARSE_ERROR, error="verifier ran out of memory (worker memory limit)"))
    except RecursionError:
        return Reply(Result.fail(Reason.PARSE_ERROR, error="input too deeply nested (recursion limit)"))
    except Exception as exc:  # a verifier bug: report it, never crash the pool
        logger.exception("verifier for domain %r raised", task.domain)
        result = Result.fail(Reason.INTERNAL_ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
        return Reply(result, error=exc if task.raise_on_error else None)


def _send_reply(conn: multiprocessing.connection.Connection, task_id: int, reply: Reply) -> None:
    try:
        conn.send((task_id, reply))
    except (BrokenPipeError, OSError):
        raise
    except Exception:  # the verifier's exception does not pickle: send its type and message instead
        error = RuntimeError(f"{type(reply.error).__name__}: {reply.error}")
        conn.send((task_id, Reply(reply.result, reply.config_error, error)))


def worker_main(fd: int, warm: tuple[str, ...], memory_mb: int) -> None:
    """Child process body (`python -m m2rl_slime.rewards._worker`): pre-warm, then serve tasks until EOF."""
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass  # the hard limit is lower already; keep it
    conn = multiprocessing.connection.Connection(fd)
    for domain in warm:
        spec = SPECS.get(domain)
        if spec is not None and spec.warm_up is not None:
            response, label, metadata = spec.warm_up
            _run_task(Task(domain, response, label, dict(metadata)))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        task_id, task = item
        try:
            _send_reply(conn, task_id, _run_task(task))
        except (BrokenPipeError, OSError):
            return
