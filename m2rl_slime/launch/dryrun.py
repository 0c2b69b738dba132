"""The ``--dry-run`` text: the exact commands each launch step would run, then the generated files.

The commands are printed one slime flag group per line with shell quoting, so the output can be pasted
into a shell. The steps mirror `cluster.run_head` / `cluster.run_worker` one to one.
"""

from __future__ import annotations

import shlex

from .cluster import LaunchOptions, ray_head_command, ray_status_command, ray_worker_command
from .model import NodeSettings, Recipe, display
from .render import Rendered

_CONT = " \\\n    "


def format_submit(rendered: Rendered) -> str:
    """``ray job submit ... -- python3 train.py`` with one flag group per continuation line."""
    submit = list(rendered.submit_command)
    split = submit.index("--")
    head = shlex.join(submit[: split - 1])
    lines = [head, shlex.quote(submit[split - 1]), shlex.join(submit[split : split + 3])]
    lines += [shlex.join(tokens) for _, tokens in rendered.groups]
    return _CONT.join(lines)


def _header(recipe: Recipe, node: NodeSettings) -> list[str]:
    role = "head" if node.is_head else "worker"
    return [
        f"# m2rl-launch --dry-run: {display(recipe.path)} ({recipe.description})",
        (
            f"# node {node.node_rank} of {node.nnodes} ({role}); MASTER_ADDR={node.master_addr}, "
            f"GPUS_PER_NODE={node.gpus_per_node}"
        ),
    ]


def describe_worker(recipe: Recipe, node: NodeSettings, opts: LaunchOptions) -> str:
    """What a worker node does."""
    lines = _header(recipe, node)
    lines.append(f"# 1. wait up to {opts.ray_timeout_s:.0f} s for the Ray head at {node.master_addr}:{node.ray_port}")
    lines.append("# 2. join the cluster and block until it stops:")
    lines.append(shlex.join(ray_worker_command(node)))
    return "\n".join(lines) + "\n"


def describe_head(recipe: Recipe, rendered: Rendered, node: NodeSettings, opts: LaunchOptions) -> str:
    """What the head node does, then the generated files' contents."""
    lines = _header(recipe, node)
    steps: list[tuple[list[str], list[str]]] = []  # (comment lines, command lines)
    if rendered.files:
        steps.append(([f"write {', '.join(f.path for f in rendered.files)} (contents below)"], []))
    steps.append(
        ([f"start Ray unless `{shlex.join(ray_status_command(node))}` answers:"], [shlex.join(ray_head_command(node))])
    )
    if node.nnodes > 1:
        steps.append(([
            f"wait up to {opts.ray_timeout_s:.0f} s until {node.nnodes} nodes have joined; every other node runs",
            f"this launch with NODE_RANK=1..{node.nnodes - 1}, which does: {shlex.join(ray_worker_command(node))}",
        ], []))  # fmt: skip
    if recipe.services:
        if opts.start_services:
            for service in (s for s in recipe.services if s.command):
                env = " ".join(f"{k}={shlex.quote(v)}" for k, v in service.env.items())
                log = f"{recipe.output_dir}/logs/{service.name}.log"
                steps.append(
                    ([f"start service {service.name} (log: {log}):"], [f"{env} {shlex.join(service.command)}".strip()])
                )
        for service in recipe.services:
            waits = [shlex.join(service.wait_command)] if service.wait_command else []
            urls = f" until {', '.join(service.health_urls)} answer" if service.health_urls else ""
            steps.append(([f"wait for service {service.name}{urls}" + (":" if waits else "")], waits))
    steps.append((["submit the job:"], [format_submit(rendered)]))
    for number, (comments, commands) in enumerate(steps, start=1):
        lines.append(f"# {number}. {comments[0]}")
        lines += [f"#    {comment}" for comment in comments[1:]]
        lines += commands
    for item in rendered.files:
        lines.append(f"# ---- {item.path}")
        lines.append(item.content.rstrip("\n"))
    return "\n".join(lines) + "\n"
