"""The typed recipe model shared by the loader, the validators, the renderer and the orchestration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

GROUPS = (
    "cluster",
    "model",
    "ckpt",
    "rollout",
    "rm",
    "eval",
    "perf",
    "grpo",
    "optimizer",
    "logging",
    "sglang",
    "misc",
)
TOP_KEYS = (
    "extends",
    "description",
    "variables",
    "entrypoint",
    "output_dir",
    "slime",
    "plugin",
    "eval",
    "suite",
    "services",
    "env",
)


@dataclass(frozen=True, slots=True)
class Service:
    """A server the run needs before it starts (e.g. the OPD teachers).

    Attributes:
        name: a label for logs and errors.
        command: argv that starts it (run by ``serve`` and ``--start-services``); empty = started elsewhere.
        env: extra environment for `command`.
        health_urls: polled with GET until each answers 200.
        wait_command: alternatively (or also), a command that exits 0 once the service is ready.
        timeout_s: how long to wait for `health_urls`.
    """

    name: str
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    health_urls: tuple[str, ...] = ()
    wait_command: tuple[str, ...] = ()
    timeout_s: float = 1800.0

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("service name must not be empty")
        if not self.health_urls and not self.wait_command:
            raise ConfigError(f"service {self.name}: give health_urls or a wait_command to know when it is ready")
        for url in self.health_urls:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"service {self.name}: health URL {url!r} is not an http(s) URL")
        if self.timeout_s <= 0:
            raise ConfigError(f"service {self.name}: timeout_s must be > 0, got {self.timeout_s}")


@dataclass(frozen=True, slots=True)
class Recipe:
    """A loaded recipe: merged over its bases, ``--set`` applied, variables resolved, validated.

    Attributes:
        name: the recipe file's stem (``rl_math``).
        path: the recipe file.
        chain: the files merged, base first.
        slime: group -> flag -> value, groups in `GROUPS` order, removed flags dropped.
        raw: the merged tree before variable resolution (for ``--emit-script``).
        origin: dotted key -> the file (or ``--set``) that set it, for error messages.
        variables: the resolved value of every variable used (and of every built-in).
        defaults: each declared variable's value before the environment is consulted (``--set``, else the
            launcher's computed value, else the declared default template; None = required), for
            ``--emit-script``.
        suite: the ``suite:`` section (an eval-only run): name, data_dir, out, model, model_id, only and
            ``skipped`` (benchmarks left out of the slime run); `eval` is rendered from it.
    """

    name: str
    path: Path
    chain: tuple[Path, ...]
    description: str
    entrypoint: Literal["train.py", "train_async.py"]
    output_dir: str
    slime: Mapping[str, Mapping[str, Any]]
    plugin: Mapping[str, Any]
    eval: Mapping[str, Any] | None
    services: tuple[Service, ...]
    env: Mapping[str, str]
    variables: Mapping[str, str]
    defaults: Mapping[str, str | None]
    raw: Mapping[str, Any]
    origin: Mapping[str, str]
    suite: Mapping[str, Any] | None = None

    def where(self, key: str) -> str:
        """``"<recipe>: <key>"`` for error messages, plus the base file or ``--set`` that set `key`."""
        return where_text(self.origin, key, display(self.path))


def display(path: Path) -> str:
    """A short form of `path` for messages: relative to the current directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def origin_of(origin: Mapping[str, str], key: str, fallback: str) -> str:
    """The file that set `key` or its closest enclosing key (``plugin.m2rl_data.domains.math``)."""
    parts = key.replace("[", ".[").split(".")
    while parts:
        found = origin.get(".".join(parts).replace(".[", "["))
        if found is not None:
            return found
        parts.pop()
    return fallback


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """This node's place in the cluster, from the ``NNODES``/``NODE_RANK``/... variables.

    Attributes:
        nnodes: number of nodes in the job.
        node_rank: this node's rank; 0 is the head (starts Ray and submits the job).
        master_addr: the head's address, reachable from every node.
        gpus_per_node: GPUs Ray offers on each node.
        ray_port: the Ray GCS port on the head.
        dashboard_port: the Ray dashboard / job-submission port on the head.
    """

    nnodes: int
    node_rank: int
    master_addr: str
    gpus_per_node: int
    ray_port: int
    dashboard_port: int

    @property
    def is_head(self) -> bool:
        return self.node_rank == 0

    @classmethod
    def from_variables(cls, variables: Mapping[str, str], where: str) -> NodeSettings:
        """Parse and check the cluster variables; ConfigError names the bad one."""

        def integer(name: str, minimum: int) -> int:
            text = variables.get(name, "")
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{where}: variable {name}={text!r} is not an integer") from None
            if value < minimum:
                raise ConfigError(f"{where}: variable {name}={value} must be >= {minimum}")
            return value

        settings = cls(
            nnodes=integer("NNODES", 1),
            node_rank=integer("NODE_RANK", 0),
            master_addr=variables.get("MASTER_ADDR", ""),
            gpus_per_node=integer("GPUS_PER_NODE", 1),
            ray_port=integer("RAY_PORT", 1),
            dashboard_port=integer("RAY_DASHBOARD_PORT", 1),
        )
        if settings.node_rank >= settings.nnodes:
            raise ConfigError(f"{where}: NODE_RANK={settings.node_rank} must be < NNODES={settings.nnodes}")
        if not settings.master_addr:
            raise ConfigError(f"{where}: MASTER_ADDR must be set to the head node's address")
        return settings


def where_text(origin: Mapping[str, str], key: str, top: str) -> str:
    """``"<recipe file>: <key>"``, adding ``(set in <file>)`` when a base recipe or ``--set`` set the key."""
    source = origin_of(origin, key, top)
    return f"{top}: {key}" if source == top else f"{top}: {key} (set in {source})"
