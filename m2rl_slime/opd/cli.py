"""`python -m m2rl_slime.opd`: start the teacher SGLang servers and wait until they are healthy.

    python -m m2rl_slime.opd serve-teachers --config custom_config.yaml [--dry-run] [--first-gpu 0]
    python -m m2rl_slime.opd wait-teachers  --config custom_config.yaml [--timeout 1800]

`--config` is a YAML with a top-level `m2rl_opd` mapping (the file slime gets as
`--custom-config-path`); a mapping one level down (e.g. `plugins: {m2rl_opd: ...}`) is found too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from ..config import parse_dataclass
from ..errors import ConfigError, M2RLError
from .config import SETTING_KEY, OPDConfig
from .servers import serve, server_commands, wait_for_teachers

logger = logging.getLogger(__name__)


def load_config_file(path: Path) -> OPDConfig:
    """Parse the `m2rl_opd` section of a YAML file (top level, or inside one top-level mapping).

    Raises:
        ConfigError: the file is unreadable, is not a mapping, has no (or several) `m2rl_opd` sections,
            or the section is invalid.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if SETTING_KEY in data:
        return parse_dataclass(OPDConfig, data[SETTING_KEY], f"{path}: {SETTING_KEY}")
    nested = [key for key, value in data.items() if isinstance(value, Mapping) and SETTING_KEY in value]
    if len(nested) != 1:
        found = f"found under {', '.join(map(str, nested))}" if nested else "not found"
        raise ConfigError(f"{path}: need exactly one `{SETTING_KEY}:` section ({found})")
    return parse_dataclass(OPDConfig, data[nested[0]][SETTING_KEY], f"{path}: {nested[0]}.{SETTING_KEY}")


def _serve_teachers(ns: argparse.Namespace) -> int:
    config = load_config_file(ns.config)
    commands = server_commands(config, python=ns.python, first_gpu=ns.first_gpu, num_gpus=ns.num_gpus)
    for command in commands:
        print(command.shell())
    if ns.dry_run:
        return 0
    return serve(commands, log_dir=ns.log_dir)


def _wait_teachers(ns: argparse.Namespace) -> int:
    from tqdm import tqdm

    config = load_config_file(ns.config)
    total = sum(len(t.urls) for t in config.teachers.values())
    with tqdm(total=total, desc="teachers healthy", unit="url", file=sys.stderr) as bar:
        asyncio.run(
            wait_for_teachers(
                config,
                timeout_s=ns.timeout,
                interval_s=ns.interval,
                endpoint=ns.endpoint,
                on_ready=lambda domain, url: bar.update(1),
            )
        )
    print(f"all {total} teacher URL(s) healthy")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m m2rl_slime.opd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("serve-teachers", help="start one SGLang server per teacher with a `serve` block")
    srv.add_argument("--config", type=Path, required=True, help="YAML with the m2rl_opd section")
    srv.add_argument("--dry-run", action="store_true", help="print the commands, start nothing")
    srv.add_argument("--python", default="python3", help="interpreter that has sglang (default: python3)")
    srv.add_argument("--first-gpu", type=int, default=0, help="first GPU for teachers without serve.gpus")
    srv.add_argument("--num-gpus", type=int, default=None, help="GPUs on this node (checked when given)")
    srv.add_argument("--log-dir", type=Path, default=Path("teacher_logs"), help="one <domain>.log per server")
    srv.set_defaults(run=_serve_teachers)
    wait = sub.add_parser("wait-teachers", help="wait until every teacher URL answers its health endpoint")
    wait.add_argument("--config", type=Path, required=True, help="YAML with the m2rl_opd section")
    wait.add_argument("--timeout", type=float, default=1800.0, help="overall deadline in seconds (default 1800)")
    wait.add_argument("--interval", type=float, default=5.0, help="seconds between polls of one URL")
    wait.add_argument("--endpoint", default=None, help="health path (default: m2rl_opd.health_endpoint)")
    wait.set_defaults(run=_wait_teachers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (errors are one line on stderr, status 2)."""
    ns = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return ns.run(ns)
    except M2RLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
