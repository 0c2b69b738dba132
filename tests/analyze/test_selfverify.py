"""``analyze selfverify`` end to end with scripted judges: each model judges its own trajectories; accuracy,
TPR/TNR, balanced accuracy, the always-correct baseline and unparsable counts match the scripts; the
outcome judge never sees the reasoning; Table 7 and the Fig. 6 correlation (r, t-test p) match hand
formulas; judge sampling is as stated; a killed run resumes without duplicates."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from behaviour_fakes import FakeLM
from selfverify_world import MODELS, build, expected, generation

from m2rl_slime.analyze.cli import main
from m2rl_slime.analyze.keyed_log import read_records
from m2rl_slime.analyze.selfverify.judging import JUDGE_KEY

K = 2


def judges() -> dict[str, FakeLM]:
    return {name: FakeLM(None, model_id=name) for name in MODELS}


def argv(dirs, servers, out, *extra) -> list[str]:
    args = ["selfverify", f"--out={out}", "--benchmarks=aime24,ifeval", "--max-per-item=2", f"--k={K}",
            "--resamples=500", "--no-progress", "--concurrency=2"]  # fmt: skip
    args += [f"--model={m}={d}" for m, d in dirs.items()] + [f"--judge-url={m}={s.url}" for m, s in servers.items()]
    return args + list(extra)


def test_metrics_table7_and_correlation(tmp_path, capsys):
    dirs = build(tmp_path / "eval")
    servers = judges()
    out = tmp_path / "sv"
    with servers["alpha"], servers["beta"], servers["gamma"]:
        assert main(argv(dirs, servers, out)) == 0
    report = json.loads((out / "selfverify.json").read_text())
    for model in MODELS:
        for mode in ("outcome", "process"):
            for bench in ("aime24", "ifeval"):
                got, want = report["metrics"][model][mode][bench], expected(model, mode, bench)
                assert got["n_judgments"] == K * got["n_trajectories"]
                for key in ("accuracy", "tpr", "tnr", "always_correct"):
                    assert got[key] == pytest.approx(want[key]) if want[key] is not None else got[key] is None, (
                        model, mode, bench, key)  # fmt: skip
                assert got["unparsable"] == K * want["unparsable"]
    alpha = report["metrics"]["alpha"]["outcome"]["aime24"]  # by hand: agreements 1, 0, 1, 0 (garbage)
    assert (alpha["accuracy"], alpha["tpr"], alpha["tnr"], alpha["balanced_accuracy"]) == (0.5, 0.5, 0.5, 0.5)
    assert alpha["unparsable_by_cause"] == {"no_boxed": K} and alpha["n_trajectories"] == 4
    assert report["metrics"]["alpha"]["process"]["aime24"]["unparsable_by_cause"] == {"index_out_of_range": K}
    assert report["metrics"]["beta"]["outcome"]["ifeval"]["balanced_accuracy"] is None  # no gold-incorrect
    # Table 7 and the correlation over the three models
    gens, judged = [], {"outcome": [], "process": []}
    for model in MODELS:
        t = report["table7"][model]
        assert t["per_benchmark"]["aime24"]["gen"] == pytest.approx(generation(model, "aime24"))
        assert t["average"]["benchmarks"] == ["aime24", "ifeval"]
        gens.append((generation(model, "aime24") + generation(model, "ifeval")) / 2)
        for mode in judged:
            judged[mode].append(sum(expected(model, mode, b)["accuracy"] for b in ("aime24", "ifeval")) / 2)
        assert t["average"]["gen"] == pytest.approx(gens[-1])
    for mode, ys in judged.items():
        c = report["correlation"][mode]
        r = float(np.corrcoef(gens, ys)[0, 1])
        t = r * math.sqrt(1 / (1 - r * r))
        assert c["r"] == pytest.approx(r) and c["n"] == 3 and c["df"] == 1
        assert c["p"] == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)))  # Student t, df = 1
        assert c["models"] == list(MODELS) and c["resamples"] == 500
    printed = capsys.readouterr().out
    assert "Table 7" in printed and "r(gen, process)" in printed and "df = 1" in printed
    assert (out / "table7.csv").read_text().splitlines()[0].startswith("model,aime24_gen,aime24_outcome")
    run = json.loads((out / "run.json").read_text())
    assert run["skipped"]["alpha"] == {"beyond --max-per-item": 1, "not scored (reward null)": 1}


def test_judge_sampling_prompts_and_seeds(tmp_path):
    dirs = build(tmp_path / "eval")
    servers = judges()
    with servers["alpha"], servers["beta"], servers["gamma"]:
        assert main(argv(dirs, servers, tmp_path / "sv", "--modes=outcome")) == 0
    requests = servers["alpha"].requests
    assert len(requests) == K * len(MODELS["alpha"]) and not servers["beta"].requests[0]["messages"][1:]
    for r in requests:
        assert (r["temperature"], r["top_p"], r["max_tokens"], r["model"]) == (1.0, 0.95, 16384, "alpha")
        text = r["messages"][0]["content"]
        assert "decoy" not in text and "[Answer]\nThe answer is 5." in text  # outcome mode: the answer only
    assert len({r["seed"] for r in requests}) == len(requests)
    records = [r for _, r in read_records(tmp_path / "sv" / "judge.jsonl", JUDGE_KEY)]
    assert {r["mode"] for r in records} == {"outcome"} and all(r["templates_version"] == 1 for r in records)
    assert "process" not in json.loads((tmp_path / "sv" / "selfverify.json").read_text())["correlation"]


def test_report_only_and_changed_settings(tmp_path, capsys):
    dirs = build(tmp_path / "eval")
    servers = judges()
    out = tmp_path / "sv"
    with servers["alpha"], servers["beta"], servers["gamma"]:
        assert main(argv(dirs, servers, out)) == 0
    before = json.loads((out / "selfverify.json").read_text())["metrics"]
    model_args = [f"--model={m}={d}" for m, d in dirs.items()]
    common = [f"--out={out}", "--benchmarks=aime24,ifeval", "--max-per-item=2", f"--k={K}", "--resamples=500"]
    assert main(["selfverify", *common, *model_args, "--report-only"]) == 0
    assert json.loads((out / "selfverify.json").read_text())["metrics"] == before
    assert main(["selfverify", *common, *model_args, "--report-only", "--temperature=0.6"]) == 2
    assert "use a new --out" in capsys.readouterr().err
    assert main(["selfverify", *common, *model_args]) == 2
    assert "--judge-url" in capsys.readouterr().err


def test_a_prompt_that_changed_is_refused(tmp_path, capsys):
    dirs = build(tmp_path / "eval")
    data = tmp_path / "eval" / "data" / "aime24.jsonl"
    data.write_text(data.read_text().replace("What is 2+3?", "What is 2+4?"))
    servers = judges()
    with servers["alpha"]:
        code = main(["selfverify", f"--out={tmp_path / 'sv'}", f"--model=alpha={dirs['alpha']}",
                     f"--judge-url=alpha={servers['alpha'].url}", "--no-progress"])  # fmt: skip
    assert code == 2 and "prompt_sha differs" in capsys.readouterr().err


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicates(tmp_path):
    dirs = build(tmp_path / "eval")
    servers = judges()
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    killed, fresh = tmp_path / "killed", tmp_path / "fresh"
    total = 2 * K * sum(len(v) for v in MODELS.values())
    with servers["alpha"], servers["beta"], servers["gamma"]:
        for server in servers.values():
            server.latency = 0.15
        proc = subprocess.Popen([sys.executable, "-m", "m2rl_slime.analyze", *argv(dirs, servers, killed)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while _lines(killed / "judge.jsonl") < 8:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run wrote no verdict"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stderr.close()
        partial = _lines(killed / "judge.jsonl")
        assert 8 <= partial < total
        for server in servers.values():
            server.latency = 0.0
        before = sum(len(s.requests) for s in servers.values())
        assert main(argv(dirs, servers, killed)) == 0
        assert sum(len(s.requests) for s in servers.values()) - before <= total - partial + 12  # (+ in flight)
        assert main(argv(dirs, servers, fresh)) == 0
    keys = [tuple(r[k] for k in JUDGE_KEY) for _, r in read_records(killed / "judge.jsonl", JUDGE_KEY)]
    assert len(keys) == len(set(keys)) == total
    metrics = lambda out: json.loads((out / "selfverify.json").read_text())["metrics"]  # noqa: E731
    assert metrics(killed) == metrics(fresh)
