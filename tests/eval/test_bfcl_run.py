"""BFCL v3 through `eval run`: multi-turn rows played by the `bfcl_multi_turn` driver (BFCL's episodes over
chat completions, calls executed by a bridge on the fake API module), scored by the episode's own verdict;
single-turn rows scored by the AST checker; `eval score` re-scores episodes from their saved decoded calls;
without a bfcl-eval environment the episode rows are reported as not run, never scored 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from m2rl_slime.eval import bfcl_driver
from m2rl_slime.eval.bfcl import bridge as bridge_module
from m2rl_slime.eval.bfcl.prepare import BfclOptions, prepare_bfcl
from m2rl_slime.eval.cli import main
from m2rl_slime.eval.samples import read_samples

HERE = Path(__file__).parent


def call(name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


SCRIPT = [[call("create_ticket", title="printer jam", priority=3), "Opened #7."], [call("close_ticket", ticket_id=7), "Closed."]]  # fmt: skip


def scripted(payload):
    """The ground truth of multi_turn_base_0, step by step; None (default answers) for other rows."""
    messages = payload["messages"]
    if "printer" not in json.dumps(messages[:1]) or not payload.get("tools"):
        return None
    turn = sum(m["role"] == "user" for m in messages) - 1
    step = sum(1 for m in messages[[i for i, m in enumerate(messages) if m["role"] == "user"][-1] :] if m["role"] == "assistant")  # fmt: skip
    replies = SCRIPT[min(turn, len(SCRIPT) - 1)]
    return {"role": "assistant", "content": replies[min(step, len(replies) - 1)]}


@pytest.fixture
def bfcl_suite(tmp_path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    prepare_bfcl(HERE / "data" / "bfcl", data / "bfcl_v3.jsonl", BfclOptions(categories=("multi_turn_base,simple",)))
    suite = {
        "name": "bfcl", "defaults": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 512},
        "benchmarks": [{"name": "bfcl_v3", "file": "bfcl_v3.jsonl", "domain": "bfcl", "k": 1, "scorer": "bfcl",
                        "driver": "bfcl_multi_turn", "driver_categories": ["multi_turn_base"]}],
    }  # fmt: skip
    (tmp_path / "bfcl.yaml").write_text(yaml.safe_dump(suite))
    return tmp_path / "bfcl.yaml", data


def run(server, suite: Path, data: Path, out: Path, *extra: str) -> int:
    argv = ["run", "--base-url", server.url, "--suite", str(suite), "--data-dir", str(data), "--out", str(out)]
    return main([*argv, "--no-progress", "--workers", "1", *extra])


def test_multi_turn_episodes_and_single_turn_rows(server, bfcl_suite, tmp_path, monkeypatch, fake_bridge, capsys):
    monkeypatch.setattr(bridge_module, "Bridge", lambda *args, **kwargs: fake_bridge())
    server.chat_hook = scripted
    suite, data = bfcl_suite
    out = tmp_path / "out"
    assert run(server, suite, data, out) == 0
    samples = {s["uid"]: s for s in read_samples(out / "samples.jsonl")}
    episode = samples["multi_turn_base_0"]
    assert (episode["reward"], episode["reason"], episode["scorer_version"]) == (1.0, "ok", bfcl_driver.VERSION)
    assert episode["episode"]["decoded"] == [[["create_ticket(title='printer jam',priority=3)"]], [["close_ticket(ticket_id=7)"]]]  # fmt: skip
    assert [m["role"] for m in episode["messages"]].count("tool") == 2 and episode["turns"] == 4
    single = [s for s in samples.values() if "messages" not in s]
    assert single and all(s["reward"] is not None and s["scorer"] == "bfcl" for s in single)  # AST checker
    assert all(s["reward"] is not None for s in samples.values())
    before = {uid: s["reward"] for uid, s in samples.items()}
    capsys.readouterr()
    assert main(["score", str(out), "--force", "--no-progress", "--workers", "1"]) == 0
    assert f"{len(samples)} samples scored" in capsys.readouterr().out
    after = {s["uid"]: s["reward"] for s in read_samples(out / "samples.jsonl")}
    assert after == before  # the saved decoded calls re-score to the same verdicts


def test_without_a_bfcl_environment_episode_rows_are_not_run(server, bfcl_suite, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("M2RL_BFCL_ENV", raising=False)
    suite, data = bfcl_suite
    out = tmp_path / "out"
    assert run(server, suite, data, out) == 0
    assert "bfcl_v3: pending (its episode rows were not run: BFCL multi-turn needs the bfcl-eval environment" in capsys.readouterr().out  # fmt: skip
    samples = list(read_samples(out / "samples.jsonl"))
    assert samples and not any(s["uid"].startswith("multi_turn") for s in samples)
    assert all(s["reward"] is not None for s in samples)
