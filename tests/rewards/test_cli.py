"""`python -m m2rl_slime.rewards score`: table, --out, --check, and one-line errors with non-zero exits."""

import json
import subprocess
import sys

import pytest

from m2rl_slime.rewards.cli import main

ROWS = [
    {"domain": "math", "response": "<think>.</think>Answer: 4", "label": "4", "expected_reward": 1},
    {
        "metadata": {"rm_type": "deepscaler"},
        "response": "<think>.</think>Answer: 5",
        "label": "4",
        "expected_reward": 0,
        "expected_reason": "wrong",
    },
    {
        "metadata": {"domain": "science", "valid_letters": "ABCD"},
        "response": "<think>.</think>\\boxed{C}",
        "label": "C",
        "expected_reward": 1,
    },
    {"domain": "math", "response": "Answer: 4", "label": "4", "expected_reason": "no_think_close"},
]


def write(tmp_path, rows, name="rollouts.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_score_prints_a_per_domain_table_and_checks(tmp_path, capsys):
    path = write(tmp_path, ROWS)
    out = tmp_path / "results.jsonl"
    assert main(["score", str(path), "--workers", "2", "--out", str(out), "--check"]) == 0
    printed = capsys.readouterr().out
    assert "math" in printed and "science" in printed and "no_think_close=1" in printed
    assert "checked 4 rows" in printed and "4 agree" in printed
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["score"] for r in results] == [1.0, 0.0, 1.0, 0.0]
    assert results[1]["line"] == 2 and results[1]["reason"] == "wrong"


def test_check_fails_on_disagreement(tmp_path, capsys):
    path = write(tmp_path, [{**ROWS[0], "expected_reward": 0}])
    assert main(["score", str(path), "--workers", "2", "--check"]) == 1
    assert "expected 0" in capsys.readouterr().err


def test_no_require_thinking(tmp_path, capsys):
    path = write(tmp_path, [ROWS[3]])
    assert main(["score", str(path), "--workers", "2", "--no-require-thinking"]) == 0
    assert "ok=1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"response": "x", "domain": "math"}\n{oops\n', "rollouts.jsonl:2: invalid JSON"),
        ('{"response": "x"}\n', "rollouts.jsonl:1: no domain"),
        ('{"response": "x", "domain": "poetry"}\n', "unknown reward domain 'poetry'"),
        ('{"label": "x", "domain": "math"}\n', "rollouts.jsonl:1: each line must be an object with a 'response'"),
        ("", "no rows"),
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "rollouts.jsonl"
    path.write_text(content)
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_missing_file_and_help(tmp_path):
    assert main(["score", str(tmp_path / "missing.jsonl")]) == 2
    proc = subprocess.run(
        [sys.executable, "-m", "m2rl_slime.rewards", "score", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "--no-require-thinking" in proc.stdout


def test_config_file_with_plugin_keys(tmp_path, capsys):
    config = tmp_path / "custom_config.yaml"
    config.write_text("m2rl_reward:\n  require_thinking: false\n  workers: 2\n")
    assert main(["score", str(write(tmp_path, [ROWS[3]])), "--config", str(config)]) == 0
    assert "ok=1" in capsys.readouterr().out
    config.write_text("m2rl_reward:\n  require_thinkng: false\n")
    assert main(["score", str(write(tmp_path, [ROWS[3]])), "--config", str(config)]) == 2
    assert "require_thinkng" in capsys.readouterr().err
