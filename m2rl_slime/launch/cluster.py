"""Multi-node orchestration: Ray start, the wait for workers, services, job submission; and the dry-run text
that lists exactly those steps.

Head (``NODE_RANK=0``): write the generated YAML files, start a Ray head unless one already answers at
``MASTER_ADDR:RAY_PORT``, wait (with a timeout) until ``NNODES`` nodes have joined, start/wait for the
recipe's services, ``ray job submit`` and wait for the job, recording the run's start, end, nodes and GPUs
in ``m2rl_run_record.json`` next to its checkpoints (`records`). Afterwards it stops what it started itself:
services it spawned (their own process groups) and the Ray head (``ray stop``) unless ``--keep-ray``.
Workers wait for the head's port, then ``ray start --address=... --block`` until the cluster goes away.
No process the launcher did not start is ever signalled (no ``pkill``).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import M2RLError
from . import records
from .model import NodeSettings, Recipe, Service, display
from .render import GeneratedFile, Rendered
from .runner import ProcessHandle, Runner

logger = logging.getLogger(__name__)

_COUNT_NODES = (
    "import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
    "print(sum(1 for n in ray.nodes() if n.get('Alive'))); ray.shutdown()"
)


class LaunchError(M2RLError):
    """A launch step failed (Ray did not start, workers did not join, a service never became healthy)."""


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    """How the orchestration behaves.

    Attributes:
        ray_timeout_s: how long the head waits for all nodes (and a worker for the head).
        poll_s: polling interval for nodes and health endpoints.
        start_services: start the recipe's services on this node (else only wait for them).
        keep_ray: leave a Ray head this launcher started running after the job.
    """

    ray_timeout_s: float = 1200.0
    poll_s: float = 5.0
    start_services: bool = False
    keep_ray: bool = False


def ray_head_command(node: NodeSettings) -> list[str]:
    """``ray start --head`` on the head node, as slime's scripts start it (plus an explicit GCS port)."""
    return [
        "ray", "start", "--head",
        "--node-ip-address", node.master_addr,
        "--port", str(node.ray_port),
        "--num-gpus", str(node.gpus_per_node),
        "--disable-usage-stats",
        "--dashboard-host=0.0.0.0",
        f"--dashboard-port={node.dashboard_port}",
    ]  # fmt: skip


def ray_worker_command(node: NodeSettings) -> list[str]:
    """``ray start --address=HEAD --block`` on a worker: joins, then returns when the cluster stops."""
    return [
        "ray", "start",
        f"--address={node.master_addr}:{node.ray_port}",
        "--num-gpus", str(node.gpus_per_node),
        "--disable-usage-stats",
        "--block",
    ]  # fmt: skip


def ray_status_command(node: NodeSettings) -> list[str]:
    """Exits 0 when a Ray cluster answers at the head's address."""
    return ["ray", "status", f"--address={node.master_addr}:{node.ray_port}"]


def count_nodes_command(node: NodeSettings) -> list[str]:
    """Prints the number of alive nodes of the cluster at the head's address (last line of stdout)."""
    return [sys.executable, "-c", _COUNT_NODES, f"{node.master_addr}:{node.ray_port}"]


def write_files(files: Sequence[GeneratedFile]) -> None:
    """Write each generated file atomically (temp file in the same directory, then rename)."""
    for item in files:
        target = Path(item.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(item.content)
        os.replace(tmp, target)
        logger.info("wrote %s", target)


def wait_for_nodes(node: NodeSettings, runner: Runner, opts: LaunchOptions) -> None:
    """Poll the Ray cluster until `node.nnodes` nodes are alive; LaunchError on timeout."""
    deadline = runner.monotonic() + opts.ray_timeout_s
    alive, last_error = 0, ""
    while True:
        code, output = runner.capture(count_nodes_command(node))
        lines = output.strip().splitlines()
        if code == 0 and lines and lines[-1].strip().isdigit():
            alive = int(lines[-1])
            if alive >= node.nnodes:
                logger.info("all %d nodes joined the Ray cluster", node.nnodes)
                return
        else:
            last_error = lines[-1] if lines else f"exit code {code}"
        if runner.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if code != 0 else ""
            raise LaunchError(
                f"only {alive} of {node.nnodes} nodes joined the Ray cluster at {node.master_addr}:{node.ray_port} "
                f"within {opts.ray_timeout_s:.0f} s{detail}; start the same command on every other node with "
                f"NODE_RANK=1..{node.nnodes - 1} MASTER_ADDR={node.master_addr} NNODES={node.nnodes}"
            )
        logger.info("waiting for nodes: %d of %d joined", alive, node.nnodes)
        runner.sleep(opts.poll_s)


def service_env(recipe: Recipe, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a service command: `extra`, with this checkout first on PYTHONPATH so that
    ``python3 -m m2rl_slime...`` commands work without an install."""
    env = dict(extra)
    m2rl_dir = recipe.variables.get("M2RL_DIR")
    if m2rl_dir:
        env["PYTHONPATH"] = ":".join(p for p in (m2rl_dir, os.environ.get("PYTHONPATH", "")) if p)
    return env


def wait_for_service(
    recipe: Recipe, service: Service, runner: Runner, opts: LaunchOptions, handle: ProcessHandle | None
) -> None:
    """Wait until the service is ready: its wait command exits 0 and every health URL answers.

    Raises:
        LaunchError: on timeout, a failing wait command, or when the process we started exits first.
    """
    hint = (
        "start it (the recipe's `services`, e.g. `python -m m2rl_slime.launch serve RECIPE` on its host) "
        "or pass --start-services"
    )
    if service.wait_command and runner.call(service.wait_command, env=service_env(recipe, {})) != 0:
        raise LaunchError(f"service {service.name} is not ready: `{shlex.join(service.wait_command)}` failed; {hint}")
    deadline = runner.monotonic() + service.timeout_s
    for url in service.health_urls:
        while not runner.http_ok(url):
            if handle is not None and handle.poll() is not None:
                raise LaunchError(f"service {service.name} exited with code {handle.poll()} before {url} answered")
            if runner.monotonic() >= deadline:
                raise LaunchError(
                    f"service {service.name} did not answer at {url} within {service.timeout_s:.0f} s; {hint}"
                )
            runner.sleep(opts.poll_s)
    logger.info("service %s is ready", service.name)


def start_services(recipe: Recipe, runner: Runner) -> list[tuple[Service, ProcessHandle]]:
    """Spawn every service that has a command; logs go to ``<output_dir>/logs/<name>.log``."""
    started = []
    for service in recipe.services:
        if not service.command:
            continue
        log_path = f"{recipe.output_dir}/logs/{service.name}.log"
        logger.info("starting service %s: %s (log: %s)", service.name, shlex.join(service.command), log_path)
        started.append((service, runner.spawn(service.command, service_env(recipe, service.env), log_path)))
    return started


def bring_up_services(recipe: Recipe, runner: Runner, opts: LaunchOptions, started: list) -> None:
    """Start services (when asked) into `started`, then wait for every service's health endpoint."""
    if opts.start_services:
        started.extend(start_services(recipe, runner))
    handles = {service.name: handle for service, handle in started}
    for service in recipe.services:
        wait_for_service(recipe, service, runner, opts, handles.get(service.name))


def run_head(recipe: Recipe, rendered: Rendered, node: NodeSettings, runner: Runner, opts: LaunchOptions) -> int:
    """Run the head node's steps; return the job's exit code."""
    write_files(rendered.files)
    started_ray = False
    services: list[tuple[Service, ProcessHandle]] = []
    try:
        if runner.capture(ray_status_command(node))[0] == 0:
            logger.info("using the Ray cluster already running at %s:%d", node.master_addr, node.ray_port)
        else:
            if runner.call(ray_head_command(node)) != 0:
                raise LaunchError(f"`{shlex.join(ray_head_command(node))}` failed")
            started_ray = True
        if node.nnodes > 1:
            wait_for_nodes(node, runner, opts)
        bring_up_services(recipe, runner, opts, services)
        logger.info("submitting %s", display(recipe.path))
        return submit_recorded(recipe, rendered, node, runner)
    finally:
        for service, handle in services:
            logger.info("stopping service %s (started by this launcher)", service.name)
            handle.stop()
        if started_ray and not opts.keep_ray:
            logger.info("stopping the Ray head this launcher started (ray stop)")
            runner.call(["ray", "stop"])


def record_dir(recipe: Recipe) -> str | None:
    """Where the run record goes: the run's save directory (``--save``), else an eval run's ``suite.out``."""
    save = recipe.slime.get("ckpt", {}).get("save")
    if isinstance(save, str) and save:
        return save
    return (recipe.suite or {}).get("out")


def submit_recorded(recipe: Recipe, rendered: Rendered, node: NodeSettings, runner: Runner) -> int:
    """Submit the job, with a run-record segment (start, end, nodes, GPUs, status) around it."""
    directory = record_dir(recipe)
    record = None
    if directory:
        try:
            run_name = recipe.variables.get("RUN_NAME") or recipe.name
            record = records.open_segment(directory, run_name, display(recipe.path), node.nnodes, node.gpus_per_node)
        except (OSError, M2RLError) as exc:  # cost accounting must never stop a run
            logger.warning("cannot write the run record in %s: %s", directory, exc)
    status = "interrupted"
    try:
        code = runner.call(rendered.submit_command)
        status = "ok" if code == 0 else "failed"
        return code
    finally:
        if record is not None:
            try:
                records.close_segment(record, status)
            except (OSError, M2RLError) as exc:
                logger.warning("cannot close the run record %s: %s", record, exc)


def run_worker(node: NodeSettings, runner: Runner, opts: LaunchOptions) -> int:
    """Wait for the head's Ray port, then join and block until the cluster stops."""
    deadline = runner.monotonic() + opts.ray_timeout_s
    while not runner.port_open(node.master_addr, node.ray_port):
        if runner.monotonic() >= deadline:
            raise LaunchError(
                f"the Ray head at {node.master_addr}:{node.ray_port} did not come up within {opts.ray_timeout_s:.0f} s; "
                "start NODE_RANK=0 first and check MASTER_ADDR"
            )
        logger.info("waiting for the Ray head at %s:%d", node.master_addr, node.ray_port)
        runner.sleep(opts.poll_s)
    logger.info("joining the Ray cluster at %s:%d (node %d)", node.master_addr, node.ray_port, node.node_rank)
    return runner.call(ray_worker_command(node))


def serve(recipe: Recipe, rendered: Rendered, runner: Runner, opts: LaunchOptions) -> int:
    """Write the generated files, start the recipe's services on this node, wait until they are ready, then
    keep them up until interrupted (Ctrl-C stops them)."""
    if not any(s.command for s in recipe.services):
        raise LaunchError(f"{display(recipe.path)} defines no service with a command to start")
    write_files(rendered.files)
    started: list[tuple[Service, ProcessHandle]] = []
    try:
        bring_up_services(recipe, runner, LaunchOptions(poll_s=opts.poll_s, start_services=True), started)
        logger.info("all services are up; Ctrl-C stops them")
        while all(handle.poll() is None for _, handle in started):
            runner.sleep(opts.poll_s)
        dead = [service.name for service, handle in started if handle.poll() is not None]
        logger.error("service(s) exited: %s", ", ".join(dead))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for _, handle in started:
            handle.stop()
