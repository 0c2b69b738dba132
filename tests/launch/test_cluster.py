"""Pins the multi-node orchestration without Ray: a scripted runner stands in for subprocesses, HTTP and
sockets. Head: Ray start (or reuse), the wait for NNODES with a timeout, services, submission, and cleanup
of only what the launcher started. Workers: wait for the head, join with --block. Nothing is ever
killed by name (no pkill/killall)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import yaml

from m2rl_slime.launch import cluster
from m2rl_slime.launch.cluster import LaunchError, LaunchOptions
from m2rl_slime.launch.model import NodeSettings
from m2rl_slime.launch.recipe import load_recipe
from m2rl_slime.launch.render import render


class FakeHandle:
    def __init__(self, exit_at: float | None, clock: Callable[[], float]):
        self.exit_at, self.clock, self.stopped = exit_at, clock, False

    def poll(self) -> int | None:
        if self.stopped:
            return -15
        return 1 if self.exit_at is not None and self.clock() >= self.exit_at else None

    def stop(self) -> None:
        self.stopped = True


class FakeRunner:
    """Records every action; time advances only through sleep()."""

    def __init__(self, *, ray_running=False, node_counts=(1,), healthy_at=0.0, port_open_at=0.0, rc=None,
                 service_exit_at=None):  # fmt: skip
        self.now = 0.0
        self.actions: list[tuple] = []
        self.ray_running = ray_running
        self.node_counts = list(node_counts)
        self.healthy_at = healthy_at
        self.port_open_at = port_open_at
        self.rc = rc or {}
        self.service_exit_at = service_exit_at
        self.handles: list[FakeHandle] = []

    def _record(self, kind: str, argv: Sequence[str] = (), **extra) -> None:
        assert not any(word in ("pkill", "killall") for word in argv)
        self.actions.append((kind, tuple(argv), extra) if extra else (kind, tuple(argv)))

    def call(self, argv, env=None) -> int:
        self._record("call", argv)
        return next((code for prefix, code in self.rc.items() if tuple(argv[: len(prefix)]) == prefix), 0)

    def capture(self, argv):
        self._record("capture", argv)
        if argv[:2] == ["ray", "status"]:
            return (0 if self.ray_running else 1), ""
        count = self.node_counts.pop(0) if len(self.node_counts) > 1 else self.node_counts[0]
        return 0, f"some log line\n{count}\n"

    def spawn(self, argv, env, log_path):
        self._record("spawn", argv, env=dict(env), log=log_path)
        handle = FakeHandle(self.service_exit_at, lambda: self.now)
        self.handles.append(handle)
        return handle

    def http_ok(self, url) -> bool:
        return self.now >= self.healthy_at

    def port_open(self, host, port) -> bool:
        return self.now >= self.port_open_at

    def sleep(self, seconds) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def kinds(self, kind: str) -> list[tuple[str, ...]]:
        return [a[1] for a in self.actions if a[0] == kind]


RECIPE = """
    output_dir: {out}
    variables: {{HOST: 127.0.0.1}}
    slime: {{grpo: {{use-tis: true}}}}
    plugin: {{m2rl_reward: {{require_thinking: true}}}}
"""
SERVICES = """
    services:
      - name: teachers
        command: [serve-teachers, --port, "1234"]
        env: {CUDA_VISIBLE_DEVICES: "0"}
        wait_command: [wait-teachers]
        health_urls: ["http://${HOST}:1234/health"]
        timeout_s: 60
"""


@pytest.fixture
def make(write_recipe, tmp_path):
    def build(nnodes=1, node_rank=0, services=False):
        text = RECIPE.format(out=tmp_path / "out") + (SERVICES if services else "")
        environ = {"NNODES": str(nnodes), "NODE_RANK": str(node_rank), "MASTER_ADDR": "10.0.0.1"}
        recipe = load_recipe(write_recipe("r.yaml", text), environ=environ, computed={"M2RL_DIR": "/opt/m2rl"})
        node = NodeSettings.from_variables(recipe.variables, "r.yaml")
        return recipe, render(recipe, has_nvlink=False), node

    return build


def test_single_node_starts_ray_submits_and_stops_only_its_own_ray(make, tmp_path):
    recipe, rendered, node = make()
    runner = FakeRunner(rc={("ray", "job"): 3})
    assert cluster.run_head(recipe, rendered, node, runner, LaunchOptions()) == 3
    calls = runner.kinds("call")
    assert calls[0] == tuple(cluster.ray_head_command(node))
    assert calls[0][:3] == ("ray", "start", "--head") and "--node-ip-address" in calls[0] and "10.0.0.1" in calls[0]
    assert calls[1] == rendered.submit_command
    assert calls[2] == ("ray", "stop")
    assert not [a for a in runner.kinds("capture") if "-c" in a]  # one node: no wait for workers
    written = yaml.safe_load((tmp_path / "out" / "m2rl_config.yaml").read_text())
    assert written == {"m2rl_reward": {"require_thinking": True}}


def test_existing_ray_cluster_is_reused_and_left_alone(make):
    recipe, rendered, node = make()
    runner = FakeRunner(ray_running=True)
    assert cluster.run_head(recipe, rendered, node, runner, LaunchOptions()) == 0
    assert runner.kinds("call") == [rendered.submit_command]


def test_keep_ray(make):
    recipe, rendered, node = make()
    runner = FakeRunner()
    cluster.run_head(recipe, rendered, node, runner, LaunchOptions(keep_ray=True))
    assert ("ray", "stop") not in runner.kinds("call")


def test_ray_start_failure_is_an_error(make):
    recipe, rendered, node = make()
    runner = FakeRunner(rc={("ray", "start"): 1})
    with pytest.raises(LaunchError, match="ray start --head .* failed"):
        cluster.run_head(recipe, rendered, node, runner, LaunchOptions())
    assert rendered.submit_command not in runner.kinds("call") and ("ray", "stop") not in runner.kinds("call")


def test_head_waits_for_all_nodes(make):
    recipe, rendered, node = make(nnodes=4)
    runner = FakeRunner(node_counts=(1, 2, 4))
    assert cluster.run_head(recipe, rendered, node, runner, LaunchOptions(poll_s=5)) == 0
    counts = [a for a in runner.kinds("capture") if a[1] == "-c"]
    assert len(counts) == 3 and counts[0][-1] == "10.0.0.1:6379" and runner.now == 10
    assert runner.kinds("call")[1] == rendered.submit_command


def test_head_times_out_with_a_clear_message_and_cleans_up(make):
    recipe, rendered, node = make(nnodes=4)
    runner = FakeRunner(node_counts=(2,))
    with pytest.raises(LaunchError) as info:
        cluster.run_head(recipe, rendered, node, runner, LaunchOptions(ray_timeout_s=60, poll_s=5))
    message = str(info.value)
    assert "only 2 of 4 nodes joined the Ray cluster at 10.0.0.1:6379 within 60 s" in message
    assert "NODE_RANK=1..3 MASTER_ADDR=10.0.0.1 NNODES=4" in message
    assert rendered.submit_command not in runner.kinds("call")
    assert runner.kinds("call")[-1] == ("ray", "stop")


def test_services_are_waited_for_not_started_by_default(make):
    recipe, rendered, node = make(services=True)
    runner = FakeRunner(healthy_at=15)
    assert cluster.run_head(recipe, rendered, node, runner, LaunchOptions(poll_s=5)) == 0
    assert runner.kinds("spawn") == []
    calls = runner.kinds("call")
    assert calls.index(("wait-teachers",)) < calls.index(rendered.submit_command)
    assert runner.now == 15


def test_start_services_spawns_and_stops_only_its_children(make, tmp_path):
    recipe, rendered, node = make(services=True)
    runner = FakeRunner()
    cluster.run_head(recipe, rendered, node, runner, LaunchOptions(start_services=True))
    ((_, argv, extra),) = [a for a in runner.actions if a[0] == "spawn"]
    assert argv == ("serve-teachers", "--port", "1234") and extra["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert extra["env"]["PYTHONPATH"].split(":")[0] == recipe.variables["M2RL_DIR"]
    assert extra["log"] == f"{tmp_path / 'out'}/logs/teachers.log"
    assert all(h.stopped for h in runner.handles)


def test_service_failures(make):
    recipe, rendered, node = make(services=True)
    runner = FakeRunner(rc={("wait-teachers",): 1})
    with pytest.raises(LaunchError, match="service teachers is not ready: `wait-teachers` failed"):
        cluster.run_head(recipe, rendered, node, runner, LaunchOptions())
    assert rendered.submit_command not in runner.kinds("call")

    runner = FakeRunner(healthy_at=1e9)
    with pytest.raises(LaunchError, match=r"did not answer at http://127\.0\.0\.1:1234/health within 60 s"):
        cluster.run_head(recipe, rendered, node, runner, LaunchOptions(poll_s=5))

    runner = FakeRunner(healthy_at=1e9, service_exit_at=10)
    with pytest.raises(LaunchError, match="exited with code 1 before"):
        cluster.run_head(recipe, rendered, node, runner, LaunchOptions(poll_s=5, start_services=True))
    assert all(h.stopped for h in runner.handles)


def test_worker_waits_for_head_then_joins_blocking(make):
    _, _, node = make(nnodes=4, node_rank=2)
    runner = FakeRunner(port_open_at=10, rc={("ray", "start"): 0})
    assert cluster.run_worker(node, runner, LaunchOptions(poll_s=5)) == 0
    assert runner.kinds("call") == [("ray", "start", "--address=10.0.0.1:6379", "--num-gpus", "8",
                                     "--disable-usage-stats", "--block")]  # fmt: skip
    assert runner.now == 10


def test_worker_times_out(make):
    _, _, node = make(nnodes=4, node_rank=1)
    with pytest.raises(LaunchError, match="Ray head at 10.0.0.1:6379 did not come up within 30 s; start NODE_RANK=0"):
        cluster.run_worker(node, FakeRunner(port_open_at=1e9), LaunchOptions(ray_timeout_s=30, poll_s=5))


def test_serve_runs_services_until_one_exits(make, tmp_path):
    recipe, rendered, _ = make(services=True)
    runner = FakeRunner(service_exit_at=20)
    assert cluster.serve(recipe, rendered, runner, LaunchOptions(poll_s=5)) == 1
    assert (tmp_path / "out" / "m2rl_config.yaml").exists()
    assert len(runner.kinds("spawn")) == 1 and all(h.stopped for h in runner.handles)


def test_serve_without_commands_is_an_error(make):
    recipe, rendered, _ = make()
    with pytest.raises(LaunchError, match="defines no service with a command"):
        cluster.serve(recipe, rendered, FakeRunner(), LaunchOptions())


def test_node_settings_validation():
    from m2rl_slime.errors import ConfigError

    good = {
        "NNODES": "2",
        "NODE_RANK": "1",
        "MASTER_ADDR": "h",
        "GPUS_PER_NODE": "8",
        "RAY_PORT": "1",
        "RAY_DASHBOARD_PORT": "2",
    }
    assert not NodeSettings.from_variables(good, "r").is_head
    with pytest.raises(ConfigError, match="NODE_RANK=2 must be < NNODES=2"):
        NodeSettings.from_variables({**good, "NODE_RANK": "2"}, "r")
    with pytest.raises(ConfigError, match="r: variable NNODES='two' is not an integer"):
        NodeSettings.from_variables({**good, "NNODES": "two"}, "r")
