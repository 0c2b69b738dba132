"""`eval collect` on rollout files shaped as slime saves them (``{"rollout_id", "samples": [Sample.to_dict()]}``
via torch.save): records from the m2rl_eval metadata and our reward hook's verdict, deferred samples
pending, sample indices from slime's running index, idempotent re-collection, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.eval.cli import main
from m2rl_slime.eval.collect import collect
from m2rl_slime.eval.samples import read_samples

torch = pytest.importorskip("torch")


def info(bench: str, k: int, path: Path, scorer: str = "reward") -> dict:
    return {"suite": "quick", "suite_sha": "abc", "benchmark": bench, "k": k, "path": str(path), "scorer": scorer,
            "sampling": {"temperature": 1.0, "top_p": 0.7, "max_tokens": 4096}, "subset": None,
            "model_path": None, "model_id": "ties"}  # fmt: skip


def sample(index: int, uid: str, m2rl_eval: dict, verdict: dict | None, response: str = "<think>\nx\n</think>\n\n7") -> dict:  # fmt: skip
    metadata = {"domain": "math", "uid": uid, "m2rl_eval": m2rl_eval}
    if verdict is not None:
        metadata["m2rl_reward"] = verdict
    return {"index": index, "prompt": "<|im_start|>user\n...", "tokens": list(range(10)), "response_length": 4,
            "response": response, "label": "7", "reward": (verdict or {}).get("score", 0.0), "metadata": metadata,
            "status": "completed", "spec_info": {}, "prefix_cache_info": {}}  # fmt: skip


def rollout_file(path: Path, data_dir: Path) -> Path:
    aime = info("aime24", 2, data_dir / "aime24.jsonl")
    hle = info("hle", 1, data_dir / "hle.jsonl", scorer="hle_judge")
    ok, wrong = {"domain": "math", "score": 1.0, "reason": "ok", "details": {"extracted": "7"}}, {
        "domain": "math", "score": 0.0, "reason": "wrong", "details": {}}  # fmt: skip
    samples = [sample(0, "aime-0", aime, ok), sample(1, "aime-0", aime, wrong), sample(2, "aime-1", aime, ok),
               sample(3, "aime-1", aime, ok), sample(0, "hle-0", hle, {"deferred": True, "scorer": "hle_judge"})]  # fmt: skip
    samples[3]["status"] = "truncated"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"rollout_id": 0, "samples": samples}, path)
    return path


def test_collect_turns_slime_samples_into_records(data_dir, tmp_path, capsys):
    out = tmp_path / "ties"
    rollout_file(out / "raw" / "eval_0.pt", data_dir)
    assert main(["collect", str(out)]) == 0
    assert "5 samples collected from 1 file(s)" in capsys.readouterr().out
    records = {(r["benchmark"], r["uid"], r["sample_idx"]): r for r in read_samples(out / "samples.jsonl")}
    assert sorted(records) == [("aime24", "aime-0", 0), ("aime24", "aime-0", 1), ("aime24", "aime-1", 0),
                               ("aime24", "aime-1", 1), ("hle", "hle-0", 0)]  # fmt: skip
    first = records[("aime24", "aime-0", 0)]
    assert (first["reward"], first["reason"], first["details"]) == (1.0, "ok", {"extracted": "7"})
    assert (first["reasoning"], first["content"], first["prompt_tokens"], first["response_tokens"]) == ("x", "7", 6, 4)
    assert first["model_id"] == "ties" and first["temperature"] == 1.0 and first["finish_reason"] == "stop"
    assert first["prompt_sha"] is not None  # looked up in the prepared file by uid
    assert records[("aime24", "aime-1", 1)]["status"] == "truncated"
    assert records[("hle", "hle-0", 0)]["reward"] is None and records[("hle", "hle-0", 0)]["scorer"] == "hle_judge"
    summary = json.loads((out / "summary.json").read_text())["benchmarks"]
    assert summary["aime24"]["avg"] == pytest.approx(0.75) and summary["hle"]["pending"] == 1
    run = json.loads((out / "run.json").read_text())
    assert run["generator"] == "slime" and run["files"]["aime24"].endswith("aime24.jsonl")
    assert collect([out], out).written == 0  # idempotent
    assert len(list(read_samples(out / "samples.jsonl"))) == 5


def test_collect_errors_are_one_line(tmp_path, capsys):
    assert main(["collect", str(tmp_path)]) == 2
    assert "no eval_*.pt under" in capsys.readouterr().err
    bad = tmp_path / "eval_0.pt"
    torch.save({"rollout_id": 0, "samples": [{"index": 0, "metadata": {}, "response": ""}]}, bad)
    with pytest.raises(ConfigError, match="no benchmark or metadata.uid"):
        collect([bad], tmp_path / "out")
    torch.save({"rollout_id": 0, "samples": [{"index": 0, "metadata": {"uid": "u", "benchmark": "b"},
                                               "response": "r", "obj": Path("/x")}]}, bad)  # fmt: skip
    with pytest.raises(ConfigError, match="--allow-pickle"):
        collect([bad], tmp_path / "out2")
    report = collect([bad], tmp_path / "out2", fallback={"suite": "s", "model_id": "m"}, allow_pickle=True)
    assert report.written == 1
