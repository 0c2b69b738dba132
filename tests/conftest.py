"""Shared pytest fixtures."""

from __future__ import annotations

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
