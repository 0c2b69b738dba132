"""Scoring outside generation: deferred scorers (the HLE judge) leave samples pending until `eval score`
runs; a new scorer version, chosen reasons or --force re-score saved samples without regenerating; an
unavailable scorer keeps samples pending; multi-turn rows run through an episode driver with a bridge and
are scored by a `command` scorer (a reference checker in its own process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import fake_driver
import pytest
import yaml
from fake_server import FakeModel

from m2rl_slime.eval import drivers
from m2rl_slime.eval.cli import main
from m2rl_slime.eval.identity import sample_seed
from m2rl_slime.eval.samples import read_samples

HERE = Path(__file__).resolve().parent


def suite_file(tmp_path: Path) -> Path:
    suite = {
        "name": "mixed", "seed": 3, "reward": {"require_thinking": True},
        "defaults": {"temperature": 0.6, "top_p": 0.95, "max_tokens": 256, "scorer": "reward"},
        "benchmarks": [
            {"name": "aime24", "file": "aime24.jsonl", "domain": "math", "k": 2, "limit": 4},
            {"name": "hle", "title": "HLE", "file": "hle.jsonl", "domain": "hle", "k": 1, "scorer": "hle_judge"},
            {"name": "tools", "file": "tools.jsonl", "domain": "bfcl", "k": 1, "driver": "fake_episode",
             "driver_categories": ["multi_turn_base"], "scorer": "command",
             "scorer_options": {"argv": [sys.executable, str(HERE / "fake_checker.py")], "version": "fake 1"}},
        ],
    }  # fmt: skip
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


PRINTED: dict[Path, str] = {}


@pytest.fixture
def evaluated(server, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(drivers.DRIVERS, "fake_episode", "fake_driver")
    out = tmp_path / "out"
    argv = ["run", "--base-url", server.url, "--suite", str(suite_file(tmp_path)), "--data-dir", str(data_dir),
            "--out", str(out), "--no-progress", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    PRINTED[out] = capsys.readouterr().out
    return out


def benchmarks(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())["benchmarks"]


def hle_expected() -> float:
    return sum(FakeModel().correct(sample_seed(3, "hle", f"hle-{i}", 0)) for i in range(4)) / 4


def test_the_judge_scores_pending_samples_later(evaluated, server, capsys):
    summary = benchmarks(evaluated)
    assert summary["hle"]["pending"] == 4 and summary["hle"]["avg"] is None  # pending, never 0
    assert "hle: pending (not scored: the HLE judge needs a judge server" in PRINTED[evaluated]
    hle = [s for s in read_samples(evaluated / "samples.jsonl") if s["benchmark"] == "hle"]
    assert all(s["reward"] is None and s["response"] for s in hle)
    count = len(server.requests)
    assert (
        main(
            [
                "score",
                str(evaluated),
                "--judge-url",
                server.url,
                "--judge-model",
                "judge-1",
                "--no-progress",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    judged = server.requests[count:]
    assert len(judged) == 4 and all(r["temperature"] == 0.0 and r["model"] == "judge-1" for r in judged)
    assert "CORRECT ANSWER:\nthing0" in judged[0]["messages"][0]["content"] or any(
        "CORRECT ANSWER:\nthing0" in r["messages"][0]["content"] for r in judged
    )
    summary = benchmarks(evaluated)
    assert summary["hle"]["avg"] == pytest.approx(hle_expected()) and summary["hle"]["pending"] == 0
    assert summary["hle"]["scorer_version"] == "hle_judge prompt v1, judge judge-1"
    assert summary["aime24"]["n_items"] == 4  # untouched


def test_a_new_scorer_version_reasons_and_force_rescore_without_regenerating(evaluated, server, capsys):
    path = evaluated / "samples.jsonl"
    records = list(read_samples(path))
    before = {(r["benchmark"], r["uid"], r["sample_idx"]): dict(r) for r in records}
    for r in records:
        if r["benchmark"] == "aime24" and r["sample_idx"] == 0:
            r["scorer_version"] = "m2rl_slime.rewards 0.0.1"  # scored by an older release
        if r["benchmark"] == "aime24" and r["sample_idx"] == 1 and r["uid"] == "aime-0":
            r["reason"], r["reward"] = "sandbox_error", 0.0
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    count = len(server.requests)
    capsys.readouterr()
    assert main(["score", str(evaluated), "--reasons", "sandbox_error", "--no-progress", "--workers", "1"]) == 0
    assert "5 samples scored" in capsys.readouterr().out  # 4 old-version samples + 1 sandbox_error
    after = {(r["benchmark"], r["uid"], r["sample_idx"]): r for r in read_samples(path)}
    assert len(server.requests) == count  # nothing regenerated
    assert all(after[k]["reward"] == before[k]["reward"] for k in before if k[0] == "aime24")
    assert after[("aime24", "aime-0", 1)]["reason"] == before[("aime24", "aime-0", 1)]["reason"]
    assert {r["scorer_version"] for k, r in after.items() if k[0] == "aime24"} == {before[("aime24", "aime-0", 0)]["scorer_version"]}  # fmt: skip
    assert main(["score", str(evaluated), "--force", "--only", "aime24", "--no-progress", "--workers", "1"]) == 0
    assert "8 samples scored" in capsys.readouterr().out
    assert main(["score", str(evaluated), "--no-progress", "--workers", "1"]) == 0
    assert "0 samples scored" in capsys.readouterr().out


def test_an_unreachable_judge_keeps_samples_pending(evaluated, capsys):
    argv = ["score", str(evaluated), "--judge-url", "http://127.0.0.1:9", "--judge-model", "j", "--judge-retries", "0",
            "--no-progress", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "hle: pending (scorer hle_judge failed" in capsys.readouterr().out
    assert benchmarks(evaluated)["hle"]["pending"] == 4


def test_multi_turn_rows_run_as_episodes_and_a_command_scores_them(evaluated):
    tools = {s["uid"]: s for s in read_samples(evaluated / "samples.jsonl") if s["benchmark"] == "tools"}
    episode = tools["tool-0"]  # category multi_turn_base: the driver played it
    roles = [m["role"] for m in episode["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"] and episode["turns"] == 2
    assert episode["messages"][1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert episode["episode"] == {"tool_calls": 1} and episode["content"].startswith("Done: result of lookup")
    assert (episode["reward"], episode["scorer"], episode["scorer_version"]) == (1.0, "command", "fake 1")
    assert episode["details"] == {"turns": 4}
    single = tools["tool-1"]  # category simple: one chat completion, no episode
    assert "messages" not in single and single["reward"] == 0.0
    assert len(fake_driver.OPENED) >= 1 and fake_driver.OPENED[-1].calls == 2
    assert benchmarks(evaluated)["tools"]["avg"] == pytest.approx(0.5)
