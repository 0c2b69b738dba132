"""The verifier pool: hard deadlines kill the worker, crashes are recovered and counted, the pool keeps serving."""

import time
from pathlib import Path

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.rewards.pool import Task, VerifierPool
from m2rl_slime.rewards.result import Reason

HELPERS = "pool_helpers"


@pytest.fixture(scope="module")
def pool():
    import os

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parent), old) if p)
    try:
        pool = VerifierPool(2, warm=(), memory_mb=512)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    yield pool
    pool.close()


def run(pool, name, label="x", deadline=5.0):
    return pool.submit(Task("math", "r", label, {}, None, f"{HELPERS}.{name}"), deadline).result(timeout=30)


def test_serves_tasks(pool):
    result = run(pool, "echo")
    assert result.reason is Reason.OK and result.details["response"] == "r"


@pytest.mark.parametrize("name", ["sleep_forever", "busy_forever"])
def test_deadline_kills_the_worker_and_the_pool_still_serves(pool, name):
    start = time.monotonic()
    result = run(pool, name, deadline=0.5)
    elapsed = time.monotonic() - start
    assert result.reason is Reason.TIMEOUT
    assert elapsed < 0.5 + 5.0  # these never end without the kill; the slack is for a loaded machine
    assert run(pool, "echo").reason is Reason.OK


@pytest.mark.parametrize("name", ["exit_hard", "segfault"])
def test_worker_crash_is_recovered_and_counted(pool, name):
    before = pool.stats["crashes"]
    result = run(pool, name)
    assert result.reason is Reason.WORKER_CRASH
    assert pool.stats["crashes"] == before + 1
    assert run(pool, "echo").reason is Reason.OK


def test_verifier_exception_is_an_internal_error_with_its_message(pool):
    result = run(pool, "raise_error")
    assert result.reason is Reason.INTERNAL_ERROR and "boom" in result.details["error"]


def test_memory_limit_turns_a_runaway_allocation_into_a_parse_error(pool):
    assert run(pool, "allocate", label="8").reason is Reason.OK
    assert run(pool, "allocate", label="4096").reason is Reason.PARSE_ERROR


def test_concurrent_items_are_all_answered(pool):
    futures = [pool.submit(Task("math", str(i), "x", {}, None, f"{HELPERS}.echo"), 5.0) for i in range(50)]
    assert sorted(int(f.result(timeout=30).details["response"]) for f in futures) == list(range(50))


def test_close_resolves_pending_items_and_refuses_new_ones():
    pool = VerifierPool(1, warm=())
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(Task("math", "r", "1", {}), 1.0)


def test_workers_that_cannot_start_break_the_pool_loudly(monkeypatch):
    import shutil
    import sys

    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    pool = VerifierPool(1, warm=())
    error = None
    try:
        deadline = time.monotonic() + 20
        while error is None and time.monotonic() < deadline:
            try:
                pool.submit(Task("math", "r", "1", {}), 1.0).result(timeout=30)
                time.sleep(0.05)
            except ConfigError as exc:  # the typed channel: a broken pool raises in the caller
                error = exc
    finally:
        pool.close()
    assert error is not None
    assert "start-up" in str(error)
