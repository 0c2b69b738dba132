"""Teacher servers: the SGLang command per expert checkpoint, starting them, and waiting until healthy.

`server_commands` is pure (the launcher may import it to render commands); `serve` starts the
servers as child processes and supervises them; `wait_for_teachers` polls every teacher URL's
health endpoint until all answer 200 or the deadline passes, then names the ones that did not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, TeacherError
from .config import OPDConfig, base_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerCommand:
    """One teacher server to start: `CUDA_VISIBLE_DEVICES=<gpus> <argv>`."""

    domain: str
    name: str
    argv: tuple[str, ...]
    gpus: tuple[int, ...]
    port: int

    @property
    def env(self) -> dict[str, str]:
        """The environment additions of this server."""
        return {"CUDA_VISIBLE_DEVICES": ",".join(map(str, self.gpus))}

    def shell(self) -> str:
        """The command as one shell line (for printing only)."""
        return f"CUDA_VISIBLE_DEVICES={self.env['CUDA_VISIBLE_DEVICES']} {shlex.join(self.argv)}"


def server_commands(
    config: OPDConfig, *, python: str = "python3", first_gpu: int = 0, num_gpus: int | None = None
) -> list[ServerCommand]:
    """One `python -m sglang.launch_server` command per teacher that has a `serve` block.

    Teachers without explicit `serve.gpus` get the next `serve.tp` GPUs from `first_gpu` on, skipping
    GPUs assigned explicitly to other teachers.

    Raises:
        ConfigError: no teacher has a `serve` block, or the assignment needs more than `num_gpus` GPUs.
    """
    served = [(domain, t) for domain, t in config.teachers.items() if t.serve is not None]
    if not served:
        raise ConfigError("no teacher has a `serve` block (model_path, port): nothing to start")
    taken = {gpu for _, t in served for gpu in (t.serve.gpus or ())}
    next_gpu = first_gpu
    commands = []
    for domain, teacher in served:
        serve = teacher.serve
        gpus = serve.gpus
        if gpus is None:
            picked: list[int] = []
            while len(picked) < serve.tp:
                if next_gpu not in taken:
                    picked.append(next_gpu)
                next_gpu += 1
            gpus = tuple(picked)
        if num_gpus is not None and max(gpus) >= num_gpus:
            raise ConfigError(f"teacher {domain!r} needs GPU(s) {list(gpus)} but this node has {num_gpus}")
        argv = [
            python,
            "-m",
            "sglang.launch_server",
            "--model-path",
            serve.model_path,
            "--host",
            serve.host,
            "--port",
            str(serve.port),
            "--tp-size",
            str(serve.tp),
        ]
        if serve.mem_fraction_static is not None:
            argv += ["--mem-fraction-static", str(serve.mem_fraction_static)]
        argv += list(serve.extra_args)
        commands.append(ServerCommand(domain, config.teacher_name(domain), tuple(argv), gpus, serve.port))
    return commands


async def wait_for_teachers(
    config: OPDConfig,
    *,
    timeout_s: float,
    interval_s: float = 5.0,
    endpoint: str | None = None,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Poll `<url><endpoint>` of every URL of every teacher until each answers HTTP 200.

    Args:
        config: The OPD setting whose teachers to wait for.
        timeout_s: Overall deadline.
        interval_s: Pause between polls of one URL.
        endpoint: Health path (default: `config.health_endpoint`, SGLang's `/health_generate`).
        on_ready: Called with (domain, url) as each URL becomes healthy (progress reporting).

    Raises:
        TeacherError: naming every teacher, domain and URL still unhealthy at the deadline, with the
            last error seen for each.
    """
    import aiohttp

    path = endpoint or config.health_endpoint
    deadline = time.monotonic() + timeout_s
    targets = [(domain, base_url(url)) for domain, t in config.teachers.items() for url in t.urls]
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(_wait_one(session, url + path, deadline, interval_s) for _, url in targets))
    failed = []
    for (domain, url), error in zip(targets, results, strict=True):
        if error is None:
            if on_ready is not None:
                on_ready(domain, url)
        else:
            failed.append(f"teacher {config.teacher_name(domain)!r} (domain {domain!r}) at {url}{path}: {error}")
    if failed:
        raise TeacherError(f"{len(failed)} teacher URL(s) not healthy after {timeout_s:g} s: " + "; ".join(failed))


async def _wait_one(session, url: str, deadline: float, interval_s: float) -> str | None:
    """None once `url` answers 200; otherwise the last error when the deadline passes."""
    import aiohttp

    last = "no answer yet"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return last
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=min(remaining, 60.0))) as resp:
                if resp.status == 200:
                    return None
                last = f"HTTP {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await asyncio.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))


def serve(commands: Sequence[ServerCommand], *, log_dir: Path, poll_s: float = 2.0) -> int:
    """Start every server as a child process and supervise them until one exits or we are signalled.

    Each server writes to `<log_dir>/<domain>.log`. On SIGINT/SIGTERM, or when any server exits, the
    remaining servers (our own children, nothing else) are terminated.

    Returns:
        The process exit status: 0 after a signal, 1 when a server exited on its own.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    stop = {"signal": None}

    def _on_signal(signum, _frame) -> None:
        stop["signal"] = signum

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[tuple[ServerCommand, subprocess.Popen]] = []
    try:
        for command in commands:
            with open(log_dir / f"{command.domain}.log", "ab") as log:
                child = subprocess.Popen(
                    command.argv,
                    env={**os.environ, **command.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            children.append((command, child))
            logger.info(
                "started teacher %r (domain %r, pid %d): %s", command.name, command.domain, child.pid, command.shell()
            )
        while stop["signal"] is None:
            for command, child in children:
                if child.poll() is not None:
                    logger.error(
                        "teacher %r (domain %r) exited with status %s; see %s",
                        command.name,
                        command.domain,
                        child.returncode,
                        log_dir / f"{command.domain}.log",
                    )
                    return 1
            time.sleep(poll_s)
        return 0
    finally:
        _terminate(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _terminate(children: Sequence[tuple[ServerCommand, subprocess.Popen]], grace_s: float = 30.0) -> None:
    """SIGTERM each still-running child's own process group, then SIGKILL after `grace_s`."""
    running = [child for _, child in children if child.poll() is None]
    for child in running:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in running:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)  # the child leads its own session: its group id is its pid
    except ProcessLookupError:
        pass  # it exited meanwhile
