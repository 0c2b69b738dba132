"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("M2RL_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only Nemotron/NeMo-Gym example rows (``../shared/data`` or ``$M2RL_SHARED_DATA``)."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("shared example data not found: set M2RL_SHARED_DATA to the shared/data directory")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


_private_pool_memory = itertools.count(2300)  # a distinct worker_memory_mb gives each such router its own pool


@pytest.fixture
def private_router(monkeypatch):
    """Build a `Router` whose verifier pool is its own and whose workers can import from extra directories.

    Pool workers are fresh interpreters: a verifier module written by a test is importable there only when
    its directory is on PYTHONPATH before the pool starts. The pools are closed after the test.
    """
    from m2rl_slime.rewards.config import RewardConfig
    from m2rl_slime.rewards.router import Router

    routers = []

    def build(*paths: Path, **settings) -> Router:
        extra = [str(p) for p in paths]
        for path in extra:
            monkeypatch.syspath_prepend(path)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*extra, *filter(None, [os.environ.get("PYTHONPATH")])]))
        settings = {"workers": 1, "deadline_s": 10.0, "worker_memory_mb": next(_private_pool_memory), **settings}
        router = Router(RewardConfig(**settings))
        routers.append(router)
        return router

    yield build
    for router in routers:
        router.pool.close()
