"""`bfcl-env`: what is refused, what is reused (building a real venv needs the network; the agreement run does it)."""

from __future__ import annotations

import json

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.eval.bfcl.env import BFCL_EVAL, MARKER, create_env
from m2rl_slime.eval.cli import main


def test_a_complete_environment_is_reused(tmp_path):
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    record = {"bfcl_eval": BFCL_EVAL, "mpmath": "mpmath==1.3.0", "full": False, "python": "3.11.0", "packages": []}
    (tmp_path / MARKER).write_text(json.dumps(record))
    assert create_env(tmp_path) == record


def test_a_foreign_folder_is_never_deleted(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a venv"):
        create_env(tmp_path)
    assert (tmp_path / "notes.txt").exists()


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["bfcl-env", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["--help"]) == 0 and "bfcl-env" in capsys.readouterr().out
