"""`raise_on_error`: by default a verifier that raises scores 0 with reason `internal_error` (a training run
never stops on a verifier bug); with `raise_on_error=True` (offline use, tests) the exception reaches the
caller, from an awaited verifier and from a pool worker alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from m2rl_slime import domains
from m2rl_slime.domains import SPECS, DomainSpec
from m2rl_slime.result import Reason
from m2rl_slime.rewards.router import Item, score

HERE = Path(__file__).parent


@pytest.fixture
def helpers(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import pool_helpers

    monkeypatch.setitem(SPECS, "echo", DomainSpec("echo", "pool_helpers.async_normalised", pooled=False))
    return pool_helpers


def _boom(text):
    raise ZeroDivisionError("inner failure")


def test_awaited_verifier_both_behaviours(helpers, monkeypatch):
    assert score("echo", "</think> 42 ", None).details["answer"] == "42"
    monkeypatch.setattr(helpers, "normalise", _boom)
    result = score("echo", "</think>42", None)
    assert result.reason is Reason.INTERNAL_ERROR and "ZeroDivisionError: inner failure" in result.details["error"]
    with pytest.raises(ZeroDivisionError, match="inner failure"):
        score("echo", "</think>42", None, raise_on_error=True)


def test_pooled_verifier_both_behaviours(monkeypatch, private_router):
    # A pool worker is another process, so the patch is the spec's verifier: one that raises ValueError.
    monkeypatch.setitem(SPECS, "math", dataclasses.replace(domains.MATH, verifier="pool_helpers.raise_error"))
    router = private_router(HERE)
    result = router.score(Item("math", "</think>4", "4"))
    assert result.reason is Reason.INTERNAL_ERROR and "boom" in result.details["error"]
    with pytest.raises(ValueError, match="boom"):
        router.score(Item("math", "</think>4", "4"), raise_on_error=True)
    # verdicts that are not exceptions stay verdicts, and the pool keeps serving
    assert router.score(Item("math", "no think", "4"), raise_on_error=True).reason is Reason.NO_THINK_CLOSE
    assert router.score(Item("math", "</think>4", "4")).reason is Reason.INTERNAL_ERROR


def test_a_verifier_config_error_is_raised_either_way(monkeypatch, private_router):
    from m2rl_slime.errors import ConfigError

    monkeypatch.setitem(SPECS, "math", dataclasses.replace(domains.MATH, verifier="pool_helpers.no_such_function"))
    router = private_router(HERE)
    for strict in (False, True):
        with pytest.raises(ConfigError, match="math verifier: pool_helpers.no_such_function is not importable"):
            router.score(Item("math", "</think>4", "4"), raise_on_error=strict)
