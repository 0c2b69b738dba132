"""Pins `--emit-script`: the standalone bash script, run with a stub `ray` and `curl` on PATH, submits exactly
the argv `render` produces and writes the same generated files; variables stay overridable shell variables;
quoting survives spaces, quotes, `$` and backticks; the script never uses pkill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from m2rl_slime.launch.emit import script_text, write_script
from m2rl_slime.launch.recipe import load_recipe
from m2rl_slime.launch.render import render

STUB = """\
#!/bin/bash
n=$(ls "$STUB_LOG" | wc -l)
printf '%s\\0' "$@" > "$STUB_LOG/$(printf %03d "$n").{name}"
if [ "$1" = status ]; then exit 1; fi
exit 0
"""

TRICKY = """
    description: tricky
    variables:
      ROOT: /w
      NAME: run
      URL: http://127.0.0.1:9
      MISSING: null
    output_dir: ${ROOT}/${NAME}/launch
    slime:
      cluster: {actor-num-nodes: '${NNODES}', actor-num-gpus-per-node: '${GPUS_PER_NODE}', colocate: true}
      ckpt: {save: "${ROOT}/with space/$NAME \\"q\\" `x`"}
      rollout: {prompt-data: '${ROOT}/data/${MISSING:-fallback}.jsonl', rollout-stop-token-ids: [151645, 151643]}
      rm: {rollout-sample-hook-path: [a.b, c.d]}
      misc: {use-tis: true}
    plugin:
      m2rl_reward: {require_thinking: false, workers: 3}
    eval:
      datasets: [{name: aime, path: '${ROOT}/eval/a b.jsonl', metadata_overrides: {tag: '$literal'}}]
    services:
      - {name: svc, health_urls: ['${URL}/health'], timeout_s: 5}
    env: {EXTRA: '${ROOT}/x y'}
    variables_note: null
"""


def run_script(script: Path, env: dict[str, str], tmp_path: Path) -> list[list[str]]:
    stub_dir, log = tmp_path / "stubs", tmp_path / "calls"
    stub_dir.mkdir(exist_ok=True)
    log.mkdir(exist_ok=True)
    for name in ("ray", "curl"):
        (stub_dir / name).write_text(STUB.format(name=name))
        (stub_dir / name).chmod(0o755)
    full_env = {"PATH": f"{stub_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), "STUB_LOG": str(log), **env}
    done = subprocess.run(
        ["bash", str(script)], env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    calls = []
    for record in sorted(log.iterdir()):
        calls.append([record.suffix[1:], *record.read_bytes().decode().split("\0")[:-1]])
    return calls


def check_against_render(recipe, env, tmp_path):
    path = tmp_path / "run.sh"
    write_script(recipe, path)
    assert os.access(path, os.X_OK)
    text = path.read_text()
    assert "pkill" not in text.replace("no pkill", "") and "killall" not in text
    calls = run_script(path, env, tmp_path)
    expected = render(recipe, has_nvlink=False)
    assert calls[0][:2] == ["ray", "status"] and calls[1][:4] == ["ray", "start", "--head", "--node-ip-address"]
    submit = calls[-1]
    assert submit[:3] == ["ray", "job", "submit"]
    split = submit.index("--")
    assert submit[split + 1 : split + 3] == ["python3", recipe.entrypoint]
    assert submit[split + 3 :] == list(expected.args)
    runtime_env = json.loads(next(a for a in submit if a.startswith("--runtime-env-json=")).split("=", 1)[1])
    assert runtime_env == expected.runtime_env
    for item in expected.files:
        assert yaml.safe_load(Path(item.path).read_text()) == yaml.safe_load(item.content)
    return calls


def test_shipped_recipe_script_submits_the_rendered_argv(tmp_path, repo_root, work_dir):
    env = {"WORK_DIR": str(work_dir), "HAS_NVLINK": "0"}
    recipe = load_recipe(repo_root / "recipes" / "rl_agent.yaml", environ=env, computed={"M2RL_DIR": "/opt/m2rl"})
    check_against_render(recipe, env, tmp_path)


def test_tricky_quoting_and_services(tmp_path, write_recipe):
    path = write_recipe("tricky.yaml", TRICKY.replace("    variables_note: null\n", ""))
    env = {"ROOT": str(tmp_path / "root"), "HAS_NVLINK": "0", "NNODES": "1"}
    recipe = load_recipe(path, ["slime.optimizer.lr=1e-6"], environ=env, computed={"M2RL_DIR": "/m"})
    assert recipe.slime["ckpt"]["save"] == f'{tmp_path}/root/with space/$NAME "q" `x`'
    calls = check_against_render(recipe, env, tmp_path)
    curl = [c for c in calls if c[0] == "curl"]
    assert curl == [["curl", "-sf", "http://127.0.0.1:9/health"]]


def test_variables_stay_shell_variables(repo_root, work_dir):
    recipe = load_recipe(repo_root / "recipes" / "rl_math.yaml", ["DATA_DIR=/mnt/data"],
                         environ={"WORK_DIR": "/ignored-at-emit"}, computed={"M2RL_DIR": "/opt/m2rl"})  # fmt: skip
    text = script_text(recipe)
    assert 'DATA_DIR="${DATA_DIR:-/mnt/data}"' in text  # --set value is the default; the env still wins
    assert 'WORK_DIR="${WORK_DIR:-/root/m2rl}"' in text  # declared default, not the emitting shell's env
    assert text.index("WORK_DIR=") < text.index("CKPT_DIR=") < text.index("SAVE_DIR=")
    assert '--prompt-data "${DATA_DIR}/math.jsonl"' in text
    assert "-- python3 train.py" in text


def test_multi_node_script_is_valid_bash(repo_root, tmp_path, work_dir):
    if shutil.which("bash") is None:
        pytest.skip("bash not available")
    recipe = load_recipe(repo_root / "recipes" / "rl_agent.yaml", environ={"WORK_DIR": str(work_dir), "NNODES": "4"})
    path = tmp_path / "multi.sh"
    write_script(recipe, path)
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    assert 'exec ray start --address="${MASTER_ADDR}:${RAY_PORT}"' in text and "--block" in text
    assert (
        textwrap.dedent("""\
        if [ "${NNODES}" -gt 1 ]; then""")
        in text
    )


@pytest.mark.parametrize("name", ["rl_math", "rl_multi", "opd", "sft"])
def test_emitted_scripts_are_valid_bash(name, repo_root, tmp_path, work_dir):
    recipe = load_recipe(repo_root / "recipes" / f"{name}.yaml", environ={"WORK_DIR": str(work_dir)})
    path = tmp_path / f"{name}.sh"
    write_script(recipe, path)
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    assert f"-- python3 {recipe.entrypoint}" in text and "pkill" not in text.replace("no pkill", "")
