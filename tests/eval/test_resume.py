"""A killed `eval run` continues where it stopped: a subprocess is SIGKILLed mid-run, rerun, and its final
files equal an uninterrupted run's (modulo order and generation times), with no key written twice. Also
the append-only log's own guarantees: a torn last line is cut off on reopening, duplicates are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from m2rl_slime.eval.samples import SampleLog, read_samples

REPO = Path(__file__).resolve().parents[2]


def _argv(server, data_dir: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "m2rl_slime.eval", "run", "--base-url", server.url, "--suite", "quick",
            "--data-dir", str(data_dir), "--out", str(out), "--concurrency", "2", "--workers", "1", "--no-progress"]  # fmt: skip


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _comparable(out: Path) -> list[str]:
    records = []
    for record in read_samples(out / "samples.jsonl"):
        record.pop("generated_at")
        records.append(json.dumps(record, sort_keys=True))
    return sorted(records)


def test_a_killed_run_resumes_without_duplicates(server, data_dir, tmp_path):
    server.latency = 0.15
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_argv(server, data_dir, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while _lines(killed / "samples.jsonl") < 6:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the run wrote no samples"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stderr.close()
    partial = _lines(killed / "samples.jsonl")
    assert 6 <= partial < 30
    server.latency = 0.0
    requests_before = len(server.requests)
    done = subprocess.run(_argv(server, data_dir, killed), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(server.requests) - requests_before <= 30 - partial + 2  # only what was missing (+ lost in flight)
    keys = [(r["benchmark"], r["uid"], r["sample_idx"]) for r in read_samples(killed / "samples.jsonl")]
    assert len(keys) == len(set(keys)) == 30
    fresh = tmp_path / "fresh"
    done = subprocess.run(_argv(server, data_dir, fresh), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _comparable(killed) == _comparable(fresh)
    items = lambda out: sorted((out / "items.jsonl").read_text().splitlines())  # noqa: E731
    assert items(killed) == items(fresh)
    summary = lambda out: json.loads((out / "summary.json").read_text())["benchmarks"]  # noqa: E731
    assert summary(killed) == summary(fresh)


def _record(uid: str, idx: int) -> dict:
    return {"benchmark": "b", "uid": uid, "sample_idx": idx, "reward": 1.0}


def test_a_torn_last_line_is_cut_off_and_duplicates_are_refused(tmp_path):
    path = tmp_path / "samples.jsonl"
    with SampleLog(path) as log:
        assert log.append(_record("a", 0)) and log.append(_record("a", 1))
        assert not log.append(_record("a", 0))
    with path.open("ab") as handle:
        handle.write(b'{"benchmark": "b", "uid": "a", "sample_idx": 2, "rew')  # a write cut by a kill
    assert len(list(read_samples(path))) == 2  # readers skip it
    with SampleLog(path) as log:
        assert log.keys == {("b", "a", 0), ("b", "a", 1)}
        assert log.append(_record("a", 2))
    assert [r["sample_idx"] for r in read_samples(path)] == [0, 1, 2]
    assert path.read_bytes().endswith(b"\n")
