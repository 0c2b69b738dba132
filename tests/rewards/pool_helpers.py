"""Verifiers that misbehave on purpose, imported by pool worker processes in tests/rewards/test_pool.py."""

import ctypes
import os
import time

from m2rl_slime.rewards.result import Result


def echo(response, label, metadata, config=None):
    return Result.correct(pid=os.getpid(), response=response)


def sleep_forever(response, label, metadata, config=None):
    while True:
        time.sleep(1)


def busy_forever(response, label, metadata, config=None):
    x = 0
    while True:
        x += 1


def exit_hard(response, label, metadata, config=None):
    os._exit(7)


def segfault(response, label, metadata, config=None):
    ctypes.string_at(0)


def raise_error(response, label, metadata, config=None):
    raise ValueError("boom")


def allocate(response, label, metadata, config=None):
    blob = bytearray(int(label) * 1024 * 1024)
    return Result.correct(size=len(blob))


def normalise(text):
    return text.strip()


async def async_normalised(response, label, metadata, config=None):
    """An async (not pooled) verifier whose inner `normalise` the tests patch to raise."""
    return Result.correct(answer=normalise(response))
