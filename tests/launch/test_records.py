"""Run records (cost, Table 2): the launcher's head writes a segment around the job with its start, end,
nodes, GPUs and status; GPU hours are summed over segments; a segment left open by a dead launcher is
closed at the next launch as an upper bound (the total becomes partial); malformed records are errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.launch import cluster, records
from m2rl_slime.launch.cluster import LaunchOptions
from m2rl_slime.launch.model import NodeSettings
from m2rl_slime.launch.recipe import load_recipe
from m2rl_slime.launch.render import render

from .test_cluster import FakeRunner

T0 = dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.timezone.utc)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_segments_and_gpu_hours(tmp_path):
    file = records.open_segment(tmp_path, "rl_math", "recipes/rl_math.yaml", 4, 8, now=T0)
    running = records.gpu_hours(file, now=at(2))
    assert (running.hours, running.partial) == (64.0, True)  # an open segment counts up to now
    records.close_segment(file, "ok", now=at(10))
    records.open_segment(tmp_path, "rl_math", "recipes/rl_math.yaml", 2, 8, now=at(12))  # a resume on 2 nodes
    records.close_segment(file, "failed", now=at(13))
    record = records.load_record(tmp_path)
    assert [s.status for s in record.segments] == ["ok", "failed"] and record.run_name == "rl_math"
    total = records.gpu_hours(record, now=at(100))
    assert (total.hours, total.partial) == (10 * 32 + 16, False)


def test_a_segment_left_running_is_closed_as_an_upper_bound(tmp_path):
    file = records.open_segment(tmp_path, "r", "x.yaml", 1, 8, now=T0)  # the launcher died here
    records.open_segment(tmp_path, "r", "x.yaml", 1, 8, now=at(3))
    records.close_segment(file, "ok", now=at(4))
    raw = json.loads(file.read_text())
    assert raw["segments"][0] == {"start": records.iso(T0), "end": records.iso(at(3)), "nodes": 1,
                                  "gpus_per_node": 8, "status": "interrupted", "end_unknown": True}  # fmt: skip
    total = records.gpu_hours(file)
    assert (total.hours, total.partial) == (32.0, True)


def test_find_record_follows_hf_exports(tmp_path):
    save = tmp_path / "ckpt" / "rl_math"
    records.open_segment(save, "rl_math", "x", 1, 8, now=T0)
    (tmp_path / "ckpt" / "rl_math_hf").mkdir()
    assert records.find_record(tmp_path / "ckpt" / "rl_math_hf") == save / records.RECORD_NAME
    assert records.find_record(save / "iter_0000399") == save / records.RECORD_NAME
    assert records.find_record(tmp_path / "ckpt") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"segments": []}', "run_name must be a non-empty string"),
        ('{"run_name": "r", "segments": [{"start": "yesterday", "nodes": 1, "gpus_per_node": 8}]}', "not an ISO 8601"),
        ('{"run_name": "r", "segments": [{"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z", '
         '"nodes": 1, "gpus_per_node": 8}]}', "is before start"),
        ('{"run_name": "r", "segments": [{"start": "2025-01-01T00:00:00Z", "nodes": 0, "gpus_per_node": 8}]}',
         "nodes: expected a positive integer"),
    ],
)  # fmt: skip
def test_malformed_records_name_the_problem(tmp_path, text, message):
    (tmp_path / records.RECORD_NAME).write_text(text)
    with pytest.raises(ConfigError, match=message):
        records.load_record(tmp_path)
    with pytest.raises(ConfigError, match=message):  # never silently replaced by a new record
        records.open_segment(tmp_path, "r", "x", 1, 8)


@pytest.fixture
def head(write_recipe, tmp_path):
    def build(save):
        text = f"output_dir: {tmp_path / 'out'}\nslime: {{ckpt: {{save: {save}}}}}\n"
        environ = {"NNODES": "2", "GPUS_PER_NODE": "4", "MASTER_ADDR": "10.0.0.1"}
        recipe = load_recipe(write_recipe("run.yaml", text), environ=environ, computed={"M2RL_DIR": "/opt"})
        return recipe, render(recipe, has_nvlink=False), NodeSettings.from_variables(recipe.variables, "run.yaml")

    return build


@pytest.mark.parametrize(("rc", "status"), [(0, "ok"), (3, "failed")])
def test_the_head_records_each_job(head, tmp_path, rc, status):
    save = tmp_path / "save"
    recipe, rendered, node = head(save)
    runner = FakeRunner(node_counts=(2,), rc={("ray", "job"): rc})
    assert cluster.run_head(recipe, rendered, node, runner, LaunchOptions()) == rc
    (segment,) = records.load_record(save).segments
    assert (segment.nodes, segment.gpus_per_node, segment.status) == (2, 4, status) and segment.end is not None


def test_an_interrupted_job_is_recorded_as_interrupted(head, tmp_path):
    save = tmp_path / "save"
    recipe, rendered, node = head(save)

    class Interrupted(FakeRunner):
        def call(self, argv, env=None):
            if list(argv[:2]) == ["ray", "job"]:
                raise KeyboardInterrupt
            return super().call(argv, env)

    with pytest.raises(KeyboardInterrupt):
        cluster.run_head(recipe, rendered, node, Interrupted(node_counts=(2,)), LaunchOptions())
    assert records.load_record(save).segments[0].status == "interrupted"


def test_an_unwritable_record_never_stops_the_job(head, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    recipe, rendered, node = head(blocker / "save")
    assert cluster.run_head(recipe, rendered, node, FakeRunner(node_counts=(2,)), LaunchOptions()) == 0
    assert "cannot write the run record" in caplog.text
