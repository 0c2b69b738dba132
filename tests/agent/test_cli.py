"""`python -m m2rl_slime.agent`: the demo quick start, offline scoring of NeMo-Gym rollouts, errors, --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from m2rl_slime.agent.cli import main


def test_demo_quick_start_agrees_with_its_expected_rewards(repo_root, capsys):
    assert main(["score", str(repo_root / "examples" / "agent_demo.jsonl"), "--demo", "--check"]) == 0
    out = capsys.readouterr().out
    assert "agreement with expected rewards 8/8" in out
    assert (
        main(
            [
                "score",
                str(repo_root / "examples" / "agent_demo.jsonl"),
                "--demo",
                "--check",
                "--noop-ground-truth",
                "reward_any",
                "--created-rows",
                "ordered_with_ids",
            ]
        )
        == 1
    )  # the two holes
    assert "6/8" in capsys.readouterr().out


def test_score_nemo_gym_rollouts_with_ground_truth(rollouts, csv_dir, tmp_path, capsys):
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rollouts))
    assert main(["score", str(path), "--csv-dir", csv_dir, "--check", "--json"]) == 0
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["score"] for r in results] == [r["reward"] for r in rollouts]
    assert "agreement with expected rewards 5/5" in captured.err


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text("{}\n")
    assert main(["score", str(path)]) == 2
    assert capsys.readouterr().err.startswith("error: no database: pass --csv-dir")
    assert main(["score", str(path), "--csv-dir", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["score"])
    assert exc.value.code == 2


def test_tools_prints_the_schemas(capsys):
    assert main(["tools"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 27


@pytest.mark.parametrize("command", [[], ["serve"], ["score"], ["tools"]])
def test_help(command):
    out = subprocess.run(
        [sys.executable, "-m", "m2rl_slime.agent", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0 and "usage:" in out.stdout
