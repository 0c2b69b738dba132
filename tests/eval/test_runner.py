"""`eval run` against the fake server: the full quick suite end to end (generation, scoring, items,
summary with known Avg@K and standard errors), the record format, retries, the /generate path with a
tokenizer built here, reasoning split by the server, missing benchmarks, and directory guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from world import expected

from m2rl_slime.eval.cli import main
from m2rl_slime.eval.samples import FIELDS, read_samples
from m2rl_slime.eval.suite import load_suite


def run(server, data_dir: Path, out: Path, *extra: str) -> int:
    argv = ["run", "--base-url", server.url, "--suite", "quick", "--data-dir", str(data_dir), "--out", str(out)]
    return main([*argv, "--no-progress", "--workers", "1", *extra])


def test_full_quick_suite_run(server, data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(server, data_dir, out) == 0
    printed = capsys.readouterr().out
    suite = load_suite("quick")
    samples = list(read_samples(out / "samples.jsonl"))
    assert len(samples) == sum(b.k * b.limit for b in suite.benchmarks) == 5 * 2 + 10 + 10
    assert len({(s["benchmark"], s["uid"], s["sample_idx"]) for s in samples}) == len(samples)
    summary = json.loads((out / "summary.json").read_text())
    for name, (avg, se, n) in expected(suite).items():
        entry = summary["benchmarks"][name]
        assert entry["avg"] == pytest.approx(avg) and entry["stderr"] == pytest.approx(se)
        assert (entry["n_items"], entry["k"], entry["pending"]) == (n, suite.get(name).k, 0)
        assert entry["sampling"] == {"temperature": 1.0, "top_p": 0.7, "max_tokens": 4096}
        assert entry["scorer"] == "reward" and entry["scorer_version"].startswith("m2rl_slime.rewards ")
        assert entry["complete"] is True
        assert f"{100 * avg:.2f}" in printed
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items) == 25 and all(i["n"] == suite.get(i["benchmark"]).k for i in items)
    record = samples[0]
    assert list(record)[: len(FIELDS)] == list(FIELDS)
    assert record["model_id"] == "fake-model" and record["suite"] == "quick" and record["status"] == "completed"
    assert record["reasoning"] and record["content"] and record["response"].startswith("<think>")
    assert record["reason"] in ("ok", "wrong") and len(record["prompt_sha"]) == 40
    requests = {(r["seed"], r["temperature"], r["top_p"], r["max_tokens"]) for r in server.requests}
    assert {s["seed"] for s in samples} == {r[0] for r in requests}  # the recorded seed is the one sent
    assert {r[1:] for r in requests} == {(1.0, 0.7, 4096)}
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["suite_sha"] == suite.sha and run_json["benchmarks"]["aime24"]["k"] == 2


def test_a_rerun_generates_nothing(server, data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(server, data_dir, out, "--only", "aime24") == 0
    before = (out / "samples.jsonl").read_text()
    count = len(server.requests)
    assert run(server, data_dir, out, "--only", "aime24") == 0
    assert len(server.requests) == count and (out / "samples.jsonl").read_text() == before
    assert "0 samples written, 10 already present" in capsys.readouterr().out


def test_transient_server_errors_are_retried(data_dir, tmp_path):
    from fake_server import FakeServer

    with FakeServer(fail_first=3) as server:
        assert run(server, data_dir, tmp_path / "out", "--only", "gpqa_diamond", "--limit", "2") == 0
    assert len(list(read_samples(tmp_path / "out" / "samples.jsonl"))) == 2


def test_a_dead_server_fails_the_samples_and_writes_none(data_dir, tmp_path, capsys):
    argv = ["run", "--base-url", "http://127.0.0.1:9", "--suite", "quick", "--data-dir", str(data_dir), "--out",
            str(tmp_path / "out"), "--model-id", "m", "--retries", "0", "--max-failures", "3", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    assert "3 samples failed" in capsys.readouterr().err
    assert (tmp_path / "out" / "samples.jsonl").read_text() == ""


def test_generate_path_with_a_tokenizer(server, data_dir, tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    server.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    out = tmp_path / "out"
    assert run(server, data_dir, out, "--api", "generate", "--tokenizer", str(tokenizer_dir), "--only", "aime24",
               "--model-id", "tok") == 0  # fmt: skip
    assert {r["path"] for r in server.requests} == {"generate"}
    templated = server.tokenizer.decode(server.requests[0]["input_ids"])
    assert templated.startswith("<|im_start|>user\n[math]") and templated.endswith("<|im_start|>assistant\n")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["aime24"]["avg"] == pytest.approx(expected(load_suite("quick"))["aime24"][0])
    sample = next(read_samples(out / "samples.jsonl"))
    assert sample["prompt_tokens"] == len(server.requests[0]["input_ids"]) and sample["response_tokens"] > 0


def test_server_side_reasoning_split_is_rejoined(data_dir, tmp_path):
    from fake_server import FakeServer

    with FakeServer(split_reasoning=True) as server:
        assert run(server, data_dir, tmp_path / "out", "--only", "aime24") == 0
    sample = next(read_samples(tmp_path / "out" / "samples.jsonl"))
    assert sample["reasoning"].startswith("adding") and sample["content"].startswith("The answer is")
    assert "</think>" in sample["response"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["benchmarks"]["aime24"]["avg"] == pytest.approx(expected(load_suite("quick"))["aime24"][0])


def test_missing_benchmarks_are_reported_never_scored(server, data_dir, tmp_path, capsys):
    (data_dir / "ifeval.jsonl").unlink()
    out = tmp_path / "out"
    assert run(server, data_dir, out) == 0
    printed = capsys.readouterr().out
    assert "ifeval: missing (" in printed and "prepare-eval" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["ifeval"]["missing"] is True and "avg" not in summary["benchmarks"]["ifeval"]
    assert not any(s["benchmark"] == "ifeval" for s in read_samples(out / "samples.jsonl"))


def test_no_prepared_file_at_all_is_one_line(server, tmp_path, capsys):
    assert run(server, tmp_path / "nothing", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no benchmark of suite quick has its prepared file" in err[0]


def test_a_directory_of_another_model_is_refused(server, data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(server, data_dir, out, "--only", "aime24", "--limit", "1") == 0
    assert run(server, data_dir, out, "--only", "aime24", "--model-id", "other") == 2
    assert "holds samples of model 'fake-model'" in capsys.readouterr().err
