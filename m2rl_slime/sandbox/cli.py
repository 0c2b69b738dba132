"""`python -m m2rl_slime.sandbox`: serve the SandboxFusion-compatible API, or run one program for debugging."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import math
import os
import sys
from pathlib import Path

from ..errors import M2RLError
from .base import RunSpec
from .local import ExecutorSettings, LocalExecutor

logger = logging.getLogger(__name__)


def _add_executor_flags(parser: argparse.ArgumentParser) -> None:
    d = ExecutorSettings()
    parser.add_argument(
        "--isolation",
        choices=["required", "best_effort"],
        default=d.isolation,
        help="required: refuse to run without namespaces (no network, uid drop); best_effort: fall "
        "back to rlimits only with a warning (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=d.memory_limit_mb,
        help="default and maximum address space of a program in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--output-mb",
        type=int,
        default=d.output_limit_mb,
        help="cap of stdout, stderr and written files in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--disk-mb",
        type=int,
        default=d.disk_limit_mb,
        help="private tmpfs size per slot in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--max-processes", type=int, default=d.max_processes, help="RLIMIT_NPROC of a program (default: %(default)s)"
    )
    parser.add_argument("--python", default=None, help="interpreter for language=python (default: this one)")
    parser.add_argument(
        "--uid-base",
        type=int,
        default=None,
        help="first unprivileged uid of the slots (default: derived from the process id)",
    )
    parser.add_argument(
        "--max-timeout",
        type=float,
        default=d.max_timeout_s,
        help="largest run/compile timeout a request may ask for, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--work-root", default=None, help="directory for the executor's private files (default: the system temp dir)"
    )
    parser.add_argument("--no-pin-cpus", action="store_true", help="do not pin each slot to one CPU")


def _settings(args: argparse.Namespace, workers: int | None) -> ExecutorSettings:
    return ExecutorSettings(
        workers=workers,
        isolation=args.isolation,
        memory_limit_mb=args.memory_mb,
        output_limit_mb=args.output_mb,
        disk_limit_mb=args.disk_mb,
        max_processes=args.max_processes,
        python=args.python,
        uid_base=args.uid_base,
        pin_cpus=not args.no_pin_cpus,
        work_root=args.work_root,
        max_timeout_s=args.max_timeout,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m m2rl_slime.sandbox",
        description="Code sandbox with SandboxFusion's /run_code API (embedded executor: namespaces, rlimits, "
        "no network, unprivileged uid).",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve POST /run_code, GET /v1/ping and GET /health")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (default: %(default)s)")
    serve.add_argument("--unix", default=None, help="listen on this Unix socket path instead of TCP")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="programs run at the same time (default: the usable CPUs). Unlike uvicorn's "
        "--workers this counts sandbox slots, not server processes",
    )
    serve.add_argument(
        "--processes", type=int, default=0, help="server processes sharing the socket (default 0 = one per 16 slots)"
    )
    serve.add_argument(
        "--max-queue",
        type=int,
        default=None,
        help="runs allowed to wait for a slot per server process before new requests get HTTP 429 (default: 4 per slot)",
    )
    serve.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--owned-dir", default=None, help=argparse.SUPPRESS)
    _add_executor_flags(serve)
    run = sub.add_parser("run", help="run one program file and print the /run_code JSON response")
    run.add_argument("file", type=Path, help="program to run")
    run.add_argument(
        "--language",
        choices=["python", "cpp"],
        default=None,
        help="default: from the file suffix (.cpp/.cc/.cxx = cpp, else python)",
    )
    run.add_argument("--stdin", type=Path, default=None, help="file fed to the program's stdin")
    run.add_argument("--run-timeout", type=float, default=10.0, help="seconds (default: %(default)s)")
    run.add_argument("--url", default=None, help="run on this SandboxFusion-compatible server instead of locally")
    _add_executor_flags(run)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    if not args.unix:
        try:
            loopback = ipaddress.ip_address(args.host).is_loopback
        except ValueError:
            loopback = args.host == "localhost"
        if not loopback:
            logger.warning(
                "sandbox server listens on %s: anyone who can reach it can run code as the sandbox user; keep it on a "
                "private network",
                args.host,
            )
    workers = args.workers or len(os.sched_getaffinity(0))
    processes = args.processes or max(1, math.ceil(workers / 16))
    return serve(
        _settings(args, workers),
        host=args.host,
        port=args.port,
        unix_path=args.unix,
        processes=processes,
        parent_pid=args.parent_pid,
        owned_dir=args.owned_dir,
        max_queue=args.max_queue,
    )


def _run(args: argparse.Namespace) -> int:
    language = args.language or ("cpp" if args.file.suffix in (".cpp", ".cc", ".cxx") else "python")
    stdin = args.stdin.read_text() if args.stdin else None
    spec = RunSpec(code=args.file.read_text(), language=language, stdin=stdin, run_timeout=args.run_timeout)
    if args.url:
        from .client import FusionClient

        client = FusionClient(args.url)
        result = asyncio.run(client.run(spec))
    else:
        executor = LocalExecutor(_settings(args, 1))
        executor.start()
        try:
            result = asyncio.run(executor.run(spec))
        finally:
            executor.close()
    sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    return {"Success": 0, "Failed": 1}.get(result.status, 2)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _serve(args) if args.command == "serve" else _run(args)
    except (M2RLError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
