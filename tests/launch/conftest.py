"""Fixtures of the launcher tests: tmp recipes and a fixed, machine-independent environment."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

RECIPES = (
    "rl_math",
    "rl_code",
    "rl_science",
    "rl_if",
    "rl_agent",
    "rl_multi",
    "opd",
    "opd_custom_loss",
    "sft",
    "eval",
)
CLUSTER_ROOT = "/cluster"  # what the tmp work dir is shown as in golden files


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write `text` (dedented) to tmp_path/<name> and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    """A WORK_DIR with the directories plugin configs check at parse time (the agent's csv_data)."""
    root = tmp_path / "m2rl"
    (root / "data" / "workplace_assistant" / "csv_data").mkdir(parents=True)
    return root


@pytest.fixture
def fixed_env(work_dir: Path) -> dict[str, str]:
    """Variables that make rendering independent of the machine."""
    return {"WORK_DIR": str(work_dir), "HAS_NVLINK": "0", "M2RL_DIR": "/opt/m2rl-slime"}
