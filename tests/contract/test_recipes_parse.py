"""Contract: the rendered command line of every shipped recipe, on 1 and 4 nodes, parses with slime's real
parser and has no flag that slime would silently ignore.

Each rendered argv (with its real generated --custom-config-path / --eval-config files) goes through
``tests/contract/slime_parse_check.py --fake-missing-paths`` (cluster paths such as checkpoints are
replaced by stand-ins). To pay slime's ~15 s import once, a driver process imports slime's argument
modules and then forks one child per argv that runs the tool's ``main()`` exactly as its command line
would.

Configuration (skipped, with the reason, when slime is not available):
- ``M2RL_SLIME_PYTHON``: a Python in which slime imports (a venv with slime's CPU dependencies); default:
  this interpreter when ``slime`` and ``megatron`` are importable here;
- ``SLIME_SRC`` / ``MEGATRON_SRC``: checkouts prepended to that Python's PYTHONPATH;
- ``SLIME_PARSE_CHECK``: another checker with the same command line (default: ``slime_parse_check.py`` here).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from m2rl_slime.launch.cluster import write_files
from m2rl_slime.launch.recipe import load_recipe
from m2rl_slime.launch.render import render

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.stem for p in (REPO / "recipes").glob("*.yaml"))
NODES = (1, 4)

DRIVER = r"""
import importlib.util, io, json, os, sys
tool_path, jobs = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("slime_parse_check", tool_path)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
import slime.utils.arguments, slime.backends.megatron_utils.arguments  # the slow part, done once
results = {}
for name, args_file, log_file in jobs:
    pid = os.fork()
    if pid == 0:
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
        sys.stderr = sys.stdout
        sys.argv = [tool_path, "--fake-missing-paths", args_file]
        code = 0
        try:
            tool.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    results[name] = os.waitstatus_to_exitcode(status)
print(json.dumps(results))
"""


def _slime_python() -> tuple[str, dict[str, str]]:
    env = dict(os.environ)
    extra = [os.environ[k] for k in ("SLIME_SRC", "MEGATRON_SRC") if os.environ.get(k)]
    if extra:
        env["PYTHONPATH"] = ":".join([*extra, str(REPO), env.get("PYTHONPATH", "")]).rstrip(":")
    python = os.environ.get("M2RL_SLIME_PYTHON")
    if python:
        return python, env
    if importlib.util.find_spec("slime") and importlib.util.find_spec("megatron"):
        return sys.executable, env
    pytest.skip(
        "slime is not configured: set M2RL_SLIME_PYTHON (and SLIME_SRC, MEGATRON_SRC) or run inside slime's env"
    )


def _tool() -> Path:
    tool = Path(os.environ.get("SLIME_PARSE_CHECK", Path(__file__).with_name("slime_parse_check.py")))
    assert tool.is_file(), f"SLIME_PARSE_CHECK={tool} is not a file"
    return tool


@pytest.fixture(scope="module")
def parse_results(tmp_path_factory) -> dict[str, tuple[int, str, int]]:
    python, env = _slime_python()
    tool = _tool()
    root = tmp_path_factory.mktemp("parse")
    work = root / "m2rl"
    (work / "data" / "workplace_assistant" / "csv_data").mkdir(parents=True)  # checked by m2rl_agent's config
    jobs, tokens = [], {}
    for name in RECIPES:
        for nodes in NODES:
            key = f"{name}@{nodes}"
            environ = {"WORK_DIR": str(work), "NNODES": str(nodes), "OUTPUT_DIR": str(root / key), "HAS_NVLINK": "0"}
            recipe = load_recipe(REPO / "recipes" / f"{name}.yaml", environ=environ, computed={"M2RL_DIR": str(REPO)})
            rendered = render(recipe, has_nvlink=False)
            write_files(rendered.files)  # slime reads the real generated YAML files
            args_file = root / f"{key}.args"
            args_file.write_text(shlex.join(["train.py", *rendered.args]))
            jobs.append([key, str(args_file), str(root / f"{key}.log")])
            tokens[key] = len(rendered.args)
    typo = root / "typo.args"  # a control: the check must reject a misspelt flag
    typo.write_text("train.py --rollout-batch-size 8 --num-rollout 1 --rollout-stop-token-idz 151645")
    jobs.append(["typo", str(typo), str(root / "typo.log")])
    tokens["typo"] = 6
    done = subprocess.run(
        [python, "-c", DRIVER, str(tool), json.dumps(jobs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    return {key: (codes[key], Path(log).read_text(), tokens[key]) for key, _, log in jobs}


@pytest.mark.parametrize("nodes", NODES)
@pytest.mark.parametrize("name", RECIPES)
def test_rendered_argv_parses_with_slime(parse_results, name, nodes):
    code, log, count = parse_results[f"{name}@{nodes}"]
    assert "UNKNOWN FLAGS" not in log, log[-2000:]
    assert code == 0, log[-4000:]
    assert f"PARSED OK: {count} tokens" in log


def test_the_checker_catches_a_typo(parse_results):
    code, log, _ = parse_results["typo"]
    assert code == 1 and "UNKNOWN FLAGS: --rollout-stop-token-idz" in log
