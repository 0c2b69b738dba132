"""``python -m m2rl_slime.launch`` / ``m2rl-launch``: launch a recipe, or serve its services, convert
checkpoints, list recipes. Every error exits non-zero with one line naming the key and the recipe file,
before anything is started.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ConfigError, M2RLError
from . import cluster, convert, dryrun, emit
from .model import NodeSettings, Recipe, display
from .recipe import default_recipes_dir, load_chain, load_recipe, merge_chain
from .render import input_paths, render
from .runner import SystemRunner

logger = logging.getLogger(__name__)
PROG = "python -m m2rl_slime.launch"
_NVLINK = re.compile(r"NV\d+")


def repo_root() -> Path:
    """The directory holding the ``m2rl_slime`` package (put on the job's PYTHONPATH as ``M2RL_DIR``)."""
    return Path(__file__).resolve().parents[2]


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe name (rl_math, ...) or path to a recipe YAML")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a variable (DATA_DIR=/data) or a recipe key (slime.rollout.num-rollout=100, "
        "plugin.m2rl_data.mixture=uniform); repeatable; VALUE is read as YAML",
    )


def _launch_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Render a recipe into slime's `ray job submit ... -- python3 train.py <args>` command plus its "
        "generated --custom-config-path/--eval-config YAML, and run it (on every node: the head, NODE_RANK=0, "
        "starts Ray, waits for NNODES nodes and submits; the others join and wait).",
        epilog=f"other commands: {PROG} serve RECIPE | convert {{hf-to-torch-dist,torch-dist-to-hf}} RECIPE | list",
    )
    _add_recipe_args(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the commands and generated files; run nothing")
    parser.add_argument(
        "--emit-script", metavar="PATH", help="write a standalone bash script in slime's style; run nothing"
    )
    parser.add_argument("--start-services", action="store_true", help="start the recipe's services on this node first")
    parser.add_argument("--keep-ray", action="store_true", help="leave the Ray head this launcher started running")
    parser.add_argument("--ray-timeout", type=float, default=1200.0, metavar="S", help="wait for nodes (default 1200)")
    parser.add_argument("--no-path-check", action="store_true", help="do not check that input paths exist")
    return parser


def _load(recipe: str, sets: Sequence[str]) -> Recipe:
    return load_recipe(recipe, sets, computed={"M2RL_DIR": str(repo_root())})


def has_nvlink(setting: str) -> bool:
    """``HAS_NVLINK``: ``1``/``0``, or ``auto`` to count NVLink entries in ``nvidia-smi topo -m`` as slime does."""
    if setting in ("0", "1"):
        return setting == "1"
    if setting != "auto":
        raise ConfigError(f"variable HAS_NVLINK={setting!r} must be 0, 1 or auto")
    try:
        topo = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(_NVLINK.search(topo.stdout))


def check_inputs(recipe: Recipe) -> None:
    """ConfigError naming the first input path (checkpoint, data, checkout) that does not exist."""
    for key, path in input_paths(recipe):
        if not Path(path).expanduser().exists():
            raise ConfigError(
                f"{recipe.where(key)}: {path} does not exist (set the variable it comes from, e.g. "
                "--set DATA_DIR=..., or pass --no-path-check)"
            )


def _launch(argv: Sequence[str]) -> int:
    opts = _launch_parser().parse_args(argv)
    if opts.ray_timeout <= 0:
        raise ConfigError(f"--ray-timeout must be > 0 seconds, got {opts.ray_timeout}")
    recipe = _load(opts.recipe, opts.sets)
    node = NodeSettings.from_variables(recipe.variables, display(recipe.path))
    rendered = render(
        recipe, has_nvlink=has_nvlink(recipe.variables["HAS_NVLINK"]), dashboard_port=node.dashboard_port
    )
    launch_opts = cluster.LaunchOptions(
        ray_timeout_s=opts.ray_timeout, start_services=opts.start_services, keep_ray=opts.keep_ray
    )
    if opts.emit_script:
        emit.write_script(recipe, opts.emit_script)
        print(f"wrote {opts.emit_script}: run it from the root of a slime checkout")
        return 0
    if opts.dry_run:
        if node.is_head:
            sys.stdout.write(dryrun.describe_head(recipe, rendered, node, launch_opts))
        else:
            sys.stdout.write(dryrun.describe_worker(recipe, node, launch_opts))
        return 0
    if not node.is_head:
        return cluster.run_worker(node, SystemRunner(), launch_opts)
    if not opts.no_path_check:
        if recipe.suite is not None:  # an eval run: benchmarks whose prepared rows are missing are left out
            from ..eval.slime_config import drop_missing

            recipe = drop_missing(recipe)
            nvlink = has_nvlink(recipe.variables["HAS_NVLINK"])
            rendered = render(recipe, has_nvlink=nvlink, dashboard_port=node.dashboard_port)
        check_inputs(recipe)
    return cluster.run_head(recipe, rendered, node, SystemRunner(), launch_opts)


def _serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} serve",
        description="Start the recipe's services (e.g. the OPD teachers) on this machine, wait until each "
        "answers its health URL, and keep them running until Ctrl-C.",
    )
    _add_recipe_args(parser)
    opts = parser.parse_args(argv)
    recipe = _load(opts.recipe, opts.sets)
    node = NodeSettings.from_variables(recipe.variables, display(recipe.path))
    rendered = render(
        recipe, has_nvlink=has_nvlink(recipe.variables["HAS_NVLINK"]), dashboard_port=node.dashboard_port
    )
    return cluster.serve(recipe, rendered, SystemRunner(), cluster.LaunchOptions())


def _list(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} list", description="List the shipped recipes.")
    parser.parse_args(argv)
    for path in sorted(default_recipes_dir().glob("*.yaml")):
        raw, _ = merge_chain(load_chain(path))
        print(f"{path.stem:20s} {raw.get('description', '')}")
    return 0


def _convert(argv: Sequence[str]) -> int:
    parser = convert.build_parser(f"{PROG} convert")
    opts = parser.parse_args(argv)
    recipe = _load(opts.recipe, opts.sets)
    command = convert.command_for(opts, recipe)
    if opts.dry_run:
        print(command.display())
        return 0
    logger.info("running: %s", command.display())
    return SystemRunner().call(command.argv, env=command.env)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"serve": _serve, "convert": _convert, "list": _list}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``m2rl-launch``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="m2rl-launch: %(message)s")
    try:
        if args and args[0] in COMMANDS:
            return COMMANDS[args[0]](args[1:])
        return _launch(args)
    except M2RLError as exc:
        print(f"m2rl-launch: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        return 130
