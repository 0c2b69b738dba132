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
from .local import LocalExecutor, wall_backstop
from .settings import add_flags, from_args

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m m2rl_slime.sandbox",
        description="Code sandbox with SandboxFusion's /run_code API (embedded executor: minimal root, namespaces, "
        "cgroups, seccomp, no network, unprivileged uid).",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve POST /run_code, GET /v1/ping and GET /health")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (default: %(default)s)")
    serve.add_argument("--unix", default=None, help="listen on this Unix socket path instead of TCP")
    serve.add_argument(
        "--frames",
        default=None,
        metavar="PATH",
        help="also listen on this Unix socket with the embedded backend's framed protocol (same JSON bodies as "
        "/run_code and /health, length-prefixed; m2rl_slime.sandbox.frames)",
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
    add_flags(serve.add_argument_group("executor settings"))
    run = sub.add_parser("run", help="run one program file and print the /run_code JSON response")
    run.add_argument("file", type=Path, help="program to run")
    run.add_argument(
        "--language",
        choices=["python", "cpp"],
        default=None,
        help="default: from the file suffix (.cpp/.cc/.cxx = cpp, else python)",
    )
    run.add_argument("--stdin", type=Path, default=None, help="file fed to the program's stdin")
    run.add_argument(
        "--run-timeout", type=float, default=10.0, help="CPU seconds (wall clock: 3x + 1 s) (default: %(default)s)"
    )
    run.add_argument("--url", default=None, help="run on this SandboxFusion-compatible server instead of locally")
    add_flags(run.add_argument_group("executor settings"))
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
        from_args(args, workers=workers),
        host=args.host,
        port=args.port,
        unix_path=args.unix,
        processes=processes,
        parent_pid=args.parent_pid,
        owned_dir=args.owned_dir,
        max_queue=args.max_queue,
        frames_path=args.frames,
    )


def _run(args: argparse.Namespace) -> int:
    language = args.language or ("cpp" if args.file.suffix in (".cpp", ".cc", ".cxx") else "python")
    stdin = args.stdin.read_text() if args.stdin else None
    spec = RunSpec(code=args.file.read_text(), language=language, stdin=stdin, run_timeout=wall_backstop(args.run_timeout),
                   cpu_timeout=args.run_timeout)  # fmt: skip
    if args.url:
        from .client import FusionClient

        client = FusionClient(args.url)
        result = asyncio.run(client.run(spec))
    else:
        executor = LocalExecutor(from_args(args, workers=1))
        try:
            executor.start()
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
