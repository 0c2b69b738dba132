"""The README's first command: the CPU demo runs every step and every shipped rollout gets its expected reward."""

import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "m2rl_slime.demo", "--keep", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all steps OK" in proc.stdout
    assert "checked 28 rows against their expected reward/reason: 28 agree" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "data").glob("*.jsonl")) == [
        "agent.jsonl",
        "code.jsonl",
        "if.jsonl",
        "math.jsonl",
        "science.jsonl",
    ]
    assert (tmp_path / "merged_ties" / "merge_manifest.json").is_file()


def test_package_entry_point_lists_commands():
    proc = subprocess.run([sys.executable, "-m", "m2rl_slime"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "demo" in proc.stdout and "merge" in proc.stdout
