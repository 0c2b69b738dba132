"""`python -m m2rl_slime.sandbox`: --help everywhere, `run` prints the /run_code JSON, errors exit 2."""

import json
import os
import subprocess
import sys

import pytest

from m2rl_slime.sandbox.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"], ["run", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "m2rl_slime.sandbox", "--log-level", "ERROR", *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip


def test_run_a_program_file(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("print(int(input()) + 1)\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("41\n")
    done = _cli("run", str(program), "--stdin", str(stdin), "--memory-mb", "512")
    if "namespace isolation is unavailable" in done.stderr:
        pytest.skip("needs root for namespaces")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run_result"]["stdout"] == "42\n"
    program.write_text("raise SystemExit(4)\n")
    assert _cli("run", str(program), "--memory-mb", "512").returncode == 1


def test_errors_are_one_line_and_exit_2(tmp_path):
    done = _cli("run", str(tmp_path / "missing.py"))
    assert done.returncode == 2 and done.stderr.startswith("error:") and len(done.stderr.splitlines()) == 1
