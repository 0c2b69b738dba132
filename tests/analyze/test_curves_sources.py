"""Runs on the command line: names, restarts across event files, run records found or given, checksums."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from tfevents import scalars_event, write_events, write_run

from m2rl_slime.analyze.curves.figures import gpu_label
from m2rl_slime.analyze.curves.sources import load_runs, parse_run_arg
from m2rl_slime.errors import ConfigError


def _record(directory, name, end="2025-05-01T10:00:00Z"):
    segments = [{"start": "2025-05-01T08:00:00Z", "end": end, "nodes": 1, "gpus_per_node": 4, "status": "ok"}]
    if end is None:
        segments[0]["status"] = "running"
    (directory / "m2rl_run_record.json").write_text(json.dumps({"run_name": name, "segments": segments}))


def test_names_come_from_the_argument_the_record_or_the_directory(tmp_path):
    for d in ("a", "b", "c"):
        write_run(tmp_path / d, {0: {"r": 1.0}})
    _record(tmp_path / "b", "rl_science")
    runs = load_runs([f"mine={tmp_path / 'a'}", str(tmp_path / "b"), str(tmp_path / "c" / "tensorboard")])
    assert [r.name for r in runs] == ["mine", "rl_science", "c"]
    event_file = next((tmp_path / "c" / "tensorboard").iterdir())
    assert load_runs([str(event_file)])[0].name == "c"
    assert parse_run_arg("x=/some/path") == ("x", Path("/some/path"))


def test_a_resumed_run_keeps_the_later_points_and_says_so(tmp_path):
    tb = tmp_path / "rl_math" / "tensorboard"
    write_events(tb / "events.out.tfevents.100.h.1.0", [scalars_event(s, {"r": float(s)}) for s in range(6)])
    write_events(tb / "events.out.tfevents.200.h.2.0", [scalars_event(s, {"r": 10.0 + s}) for s in range(4, 8)])
    (run,) = load_runs([str(tmp_path / "rl_math")])
    assert run.scalars["r"].values == (0.0, 1.0, 2.0, 3.0, 14.0, 15.0, 16.0, 17.0)
    assert len(run.files) == 2 and run.last_step == 7
    assert run.warnings == (
        f"{tmp_path / 'rl_math'}: 2 point(s) logged again after a restart; the later ones are kept",
    )


def test_gpu_hours_of_a_finished_and_of_a_running_run(tmp_path):
    write_run(tmp_path / "done", {0: {"r": 1.0}})
    write_run(tmp_path / "going", {0: {"r": 1.0}})
    _record(tmp_path / "done", "done")
    _record(tmp_path / "going", "going", end=None)
    now = dt.datetime(2025, 5, 1, 9, 30, tzinfo=dt.timezone.utc)
    done, going = load_runs([str(tmp_path / "done"), str(tmp_path / "going")], now=now)
    assert (done.gpu.hours, done.gpu.partial, gpu_label(done)) == (8.0, False, "done (8.0 GPU-h)")
    assert (going.gpu.hours, going.gpu.partial) == (6.0, True)
    assert gpu_label(going) == "going (>= 6.0 GPU-h, running)"


def test_a_malformed_record_found_next_to_a_run_is_a_warning_but_a_given_one_is_an_error(tmp_path):
    write_run(tmp_path / "rl_if", {0: {"r": 1.0}})
    (tmp_path / "rl_if" / "m2rl_run_record.json").write_text('{"run_name": "rl_if"}')
    (run,) = load_runs([str(tmp_path / "rl_if")])
    assert run.gpu is None and run.name == "rl_if"
    assert run.warnings and run.warnings[0].startswith("run record ignored: ") and "segments" in run.warnings[0]
    with pytest.raises(ConfigError, match="segments must be a list"):
        load_runs([str(tmp_path / "rl_if")], records={"rl_if": str(tmp_path / "rl_if" / "m2rl_run_record.json")})
    elsewhere = tmp_path / "records"
    elsewhere.mkdir()
    _record(elsewhere, "rl_if")
    (run,) = load_runs([str(tmp_path / "rl_if")], records={"rl_if": str(elsewhere / "m2rl_run_record.json")})
    assert run.gpu.hours == 8.0 and run.warnings == ()


def test_checksums_are_verified_unless_told_not_to(tmp_path):
    path = write_run(tmp_path / "run", {0: {"r": 0.5}, 1: {"r": 0.75}})
    data = bytearray(path.read_bytes())
    data[-6] ^= 0x40  # inside the last event's data: flips the value's bits
    path.write_bytes(bytes(data))
    (run,) = load_runs([str(tmp_path / "run")])
    assert run.scalars["r"].steps == (0,)
    assert any("failed their checksum" in w for w in run.warnings)
    (unchecked,) = load_runs([str(tmp_path / "run")], verify=False)
    assert unchecked.scalars["r"].steps == (0, 1) and unchecked.scalars["r"].values[1] != 0.75
