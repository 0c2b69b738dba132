"""Run records (m2rl_run_record.json): validation, lookup next to a run's data, GPU hours."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.launch.records import RECORD_NAME, find_record, gpu_hours, load_record

UTC = dt.timezone.utc


def _write(directory, segments, name="rl_math"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RECORD_NAME
    path.write_text(json.dumps({"run_name": name, "recipe": "recipes/rl_math.yaml", "segments": segments}))
    return path


def seg(start, end, nodes=1, gpus=8, status="ok"):
    return {"start": start, "end": end, "nodes": nodes, "gpus_per_node": gpus, "status": status}


def test_gpu_hours_sum_segments_times_gpus(tmp_path):
    path = _write(
        tmp_path,
        [
            seg("2025-05-01T08:00:00Z", "2025-05-01T20:00:00Z", nodes=4, status="failed"),  # 12 h x 32
            seg("2025-05-02T08:00:00+00:00", "2025-05-02T09:30:00+00:00", nodes=2),
        ],  # 1.5 h x 16
    )
    record = load_record(tmp_path)
    assert record.run_name == "rl_math" and record.path == path and len(record.segments) == 2
    assert gpu_hours(record).hours == pytest.approx(12 * 32 + 1.5 * 16)
    assert gpu_hours(record).partial is False
    assert gpu_hours(path) == gpu_hours(record)


def test_an_open_segment_counts_up_to_now_and_is_partial(tmp_path):
    _write(
        tmp_path,
        [seg("2025-05-01T08:00:00Z", "2025-05-01T10:00:00Z"), seg("2025-05-02T08:00:00Z", None, status="running")],
    )
    now = dt.datetime(2025, 5, 2, 11, 0, tzinfo=UTC)
    got = gpu_hours(load_record(tmp_path), now=now)
    assert got.hours == pytest.approx(2 * 8 + 3 * 8) and got.partial is True
    assert gpu_hours(load_record(tmp_path), now=dt.datetime(2025, 5, 2, 11, 0)).hours == pytest.approx(40)  # naive


def test_the_record_is_found_in_the_run_dir_or_its_parent(tmp_path):
    path = _write(tmp_path / "rl_math", [])
    (tmp_path / "rl_math" / "tensorboard").mkdir()
    assert find_record(tmp_path / "rl_math") == path
    assert find_record(tmp_path / "rl_math" / "tensorboard") == path
    assert find_record(path) == path
    assert find_record(tmp_path) is None


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([seg("yesterday", None)], "not an ISO 8601 time"),
        ([seg("2025-05-01T10:00:00Z", "2025-05-01T08:00:00Z")], "is before start"),
        ([seg("2025-05-01T10:00:00Z", None, nodes=0)], "nodes: expected a positive integer"),
        ([seg("2025-05-01T10:00:00Z", None, status="done")], "is not one of running, ok"),
        ([{"start": "2025-05-01T10:00:00Z"}], "missing nodes, gpus_per_node"),
        ("not a list", "segments must be a list"),
    ],
)
def test_malformed_records_name_the_file_and_field(tmp_path, segments, message):
    _write(tmp_path, segments)
    with pytest.raises(ConfigError, match=message) as err:
        load_record(tmp_path)
    assert RECORD_NAME in str(err.value)


def test_missing_and_invalid_json_records(tmp_path):
    with pytest.raises(ConfigError, match="no run record"):
        load_record(tmp_path)
    (tmp_path / RECORD_NAME).write_text("{not json")
    with pytest.raises(ConfigError, match=r":1: not valid JSON"):
        load_record(tmp_path)
