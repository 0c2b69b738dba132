"""Pins `launch/<run>.sh`: one thin wrapper per recipe that only sets the environment and execs the launcher
(never pkill), and whose `--dry-run` prints exactly the golden output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CLUSTER_ROOT, RECIPES

GOLDEN = Path(__file__).parent / "golden"


def test_one_wrapper_per_recipe(repo_root):
    wrappers = {p.stem for p in (repo_root / "launch").glob("*.sh")} - {"export_experts"}
    assert wrappers == set(RECIPES) == {p.stem for p in (repo_root / "recipes").glob("*.yaml")}
    for name in RECIPES:
        path = repo_root / "launch" / f"{name}.sh"
        text = path.read_text()
        assert os.access(path, os.X_OK)
        assert f'exec "${{PYTHON:-python3}}" -m m2rl_slime.launch "${{ROOT}}/recipes/{name}.yaml" "$@"' in text
        assert "pkill" not in text and "killall" not in text and "ray stop" not in text


@pytest.mark.parametrize("name", ["rl_math", "opd"])  # the wrappers differ only in the recipe name
def test_wrapper_dry_run_prints_the_golden_command(name, repo_root, fixed_env, work_dir):
    env = {**os.environ, **fixed_env, "PYTHON": sys.executable}
    command = ["bash", f"launch/{name}.sh", "--dry-run"]
    done = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.replace(str(work_dir.parent), CLUSTER_ROOT) == (GOLDEN / f"{name}_1node.txt").read_text()


def test_export_experts_converts_sft_and_the_five_experts(repo_root, fixed_env, work_dir):
    runs = ("sft", "rl_math", "rl_code", "rl_science", "rl_if", "rl_agent")
    for run in runs:
        save = work_dir / "checkpoints" / run
        save.mkdir(parents=True)
        (save / "latest_checkpointed_iteration.txt").write_text("399")
    env = {**os.environ, **fixed_env, "PYTHON": sys.executable}
    command = ["bash", "launch/export_experts.sh", "--dry-run"]
    done = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(runs)
    for run, line in zip(runs, lines, strict=True):
        assert (
            f"--input-dir {work_dir}/checkpoints/{run}/iter_0000399 --output-dir {work_dir}/checkpoints/{run}_hf"
            in line
        )
    assert "pkill" not in (repo_root / "launch" / "export_experts.sh").read_text()
