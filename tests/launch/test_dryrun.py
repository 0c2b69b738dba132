"""Pins `--dry-run` output of every shipped recipe on 1 and 4 nodes against golden files, so any change of a
rendered command line is deliberate. Regenerate with `M2RL_UPDATE_GOLDEN=1 pytest tests/launch/test_dryrun.py`.

Rendering uses a fixed environment (`fixed_env`); the tmp work directory is shown as `/cluster` in the
golden files (the agent config checks at parse time that its csv directory exists, so it must be real).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from m2rl_slime.launch.cli import main

from .conftest import CLUSTER_ROOT, RECIPES

GOLDEN = Path(__file__).parent / "golden"
NODES = {1: {}, 4: {"NNODES": "4", "MASTER_ADDR": "10.0.0.1"}}


def dry_run(name: str, env: dict[str, str], monkeypatch, capsys, repo_root: Path, *extra: str) -> str:
    monkeypatch.chdir(repo_root)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main([name, "--dry-run", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("nodes", sorted(NODES))
@pytest.mark.parametrize("name", RECIPES)
def test_dry_run_matches_golden(name, nodes, fixed_env, work_dir, monkeypatch, capsys, repo_root):
    out = dry_run(name, {**fixed_env, **NODES[nodes]}, monkeypatch, capsys, repo_root)
    out = out.replace(str(work_dir.parent), CLUSTER_ROOT)
    golden = GOLDEN / f"{name}_{nodes}node.txt"
    if os.environ.get("M2RL_UPDATE_GOLDEN") == "1":
        golden.write_text(out)
    assert golden.exists(), f"missing {golden}: run with M2RL_UPDATE_GOLDEN=1"
    assert out == golden.read_text()


def test_dry_run_content(fixed_env, work_dir, monkeypatch, capsys, repo_root):
    out = dry_run("rl_multi", {**fixed_env, **NODES[4]}, monkeypatch, capsys, repo_root)
    assert "ray start --head --node-ip-address 10.0.0.1 --port 6379 --num-gpus 8" in out
    assert "until 4 nodes have joined" in out and "NODE_RANK=1..3" in out
    assert "-- python3 /root/slime/train.py \\\n    --actor-num-nodes 4 --actor-num-gpus-per-node 8 --colocate" in out
    assert "--data-source-path m2rl_slime.hooks.MultiDomainDataSource" in out
    assert f"# ---- {work_dir}/checkpoints/rl_multi/launch/m2rl_config.yaml" in out
    assert "pkill" not in out


def test_worker_dry_run(fixed_env, monkeypatch, capsys, repo_root):
    out = dry_run("rl_math", {**fixed_env, **NODES[4], "NODE_RANK": "3"}, monkeypatch, capsys, repo_root)
    assert "node 3 of 4 (worker)" in out
    assert out.rstrip().endswith("ray start --address=10.0.0.1:6379 --num-gpus 8 --disable-usage-stats --block")
    assert "ray job submit" not in out


def test_opd_start_services_dry_run(fixed_env, monkeypatch, capsys, repo_root):
    out = dry_run("opd", fixed_env, monkeypatch, capsys, repo_root, "--start-services")
    assert "start service teachers" in out
    assert "python3 -m m2rl_slime.opd serve-teachers --config" in out
    assert out.index("wait-teachers") < out.index("ray job submit")
