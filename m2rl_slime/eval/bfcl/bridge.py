"""The client side of the BFCL bridge: one long-lived process in the isolated bfcl-eval venv, spoken to in JSON lines.

bfcl-eval's API classes (the file system, trading bot, travel booking ... of the multi-turn categories) and
its multi-turn checker pin numpy, tree-sitter and vendor SDKs, so they never enter slime's environment. The
eval runner starts one `Bridge` per run (``python -m m2rl_slime.eval bfcl-env DIR`` makes the venv) and
reuses it for every episode: `open_session` / `execute` / `close_session` run an episode's calls against its
own API instances, and `check` runs the reference checker on an episode's decoded calls.

Every failure of the bridge (missing venv, crash, timeout, malformed reply) raises `BridgeError`: it is an
infrastructure error, never a wrong answer. A bridge that died is restarted by the next request (the
sessions it held are gone; their episodes fail with `BridgeError` and are re-run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import M2RLError

logger = logging.getLogger(__name__)

ENV_VARIABLE = "M2RL_BFCL_ENV"
SCRIPT = Path(__file__).with_name("_bridge_main.py")
_LINE_LIMIT = 256 * 1024 * 1024  # replies of long-context entries are large


class BridgeError(M2RLError):
    """The BFCL bridge failed as infrastructure (not a wrong answer)."""


class BridgeUnavailable(BridgeError):
    """No usable bfcl-eval environment."""


def env_python(env_dir: str | Path | None) -> Path:
    """The python of a bfcl-eval venv (`env_dir`, else ``$M2RL_BFCL_ENV``).

    Raises:
        BridgeUnavailable: no folder given, or it holds no completed bfcl-env venv.
    """
    from .env import MARKER

    folder = env_dir or os.environ.get(ENV_VARIABLE)
    if not folder:
        raise BridgeUnavailable(
            f"no bfcl-eval environment given (pass its folder or set {ENV_VARIABLE}); "
            "create one with: python -m m2rl_slime.eval bfcl-env DIR"
        )
    python = Path(folder) / "bin" / "python"
    if not python.exists() or not (Path(folder) / MARKER).is_file():
        raise BridgeUnavailable(
            f"{folder}: no completed bfcl-eval environment; create it with: python -m m2rl_slime.eval bfcl-env {folder}"
        )
    return python


class Bridge:
    """A bridge process (started on first use; `close()` or ``async with`` stops it).

    Args:
        env_dir: The bfcl-env venv folder (default ``$M2RL_BFCL_ENV``); ignored when `python` is given.
        python: An interpreter to run the bridge with instead (tests: one without bfcl-eval, plus
            `api_module`).
        api_module: A module replacing bfcl-eval's multi-turn checker module (tests).
        api_path: Folders put first on the bridge's ``sys.path`` (to import `api_module`).
        timeout_s: Deadline of one request.
        memory_mb: Address-space limit of the bridge process (0 = none).
    """

    def __init__(
        self,
        env_dir: str | Path | None = None,
        *,
        python: str | Path | None = None,
        api_module: str | None = None,
        api_path: Sequence[str | Path] = (),
        timeout_s: float = 300.0,
        memory_mb: int = 16384,
    ) -> None:
        self._python = Path(python) if python else None
        self._env_dir = env_dir
        self._api_module = api_module
        self._api_path = [str(p) for p in api_path]
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        self._process: asyncio.subprocess.Process | None = None
        self._lock: asyncio.Lock | None = None
        self._ids = 0
        self._home: str | None = None
        self.info: dict[str, Any] = {}

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _command(self) -> list[str]:
        python = self._python or env_python(self._env_dir)
        command = [str(python), "-I", str(SCRIPT), "--memory-mb", str(self._memory_mb)]
        if self._api_module:
            command += ["--api-module", self._api_module]
        for folder in self._api_path:
            command += ["--api-path", folder]
        return command

    async def start(self) -> None:
        """Start the process (if not running) and read its versions into `info`."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._process is not None and self._process.returncode is None:
            return
        command = self._command()
        self._home = self._home or tempfile.mkdtemp(prefix="m2rl-bfcl-bridge-")
        env = {"PATH": os.defpath, "HOME": self._home, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=self._home,
                env=env,
                limit=_LINE_LIMIT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BridgeError(f"cannot start the BFCL bridge ({command[0]}): {exc}") from None
        self.info = await self._send({"op": "hello"})
        logger.info("BFCL bridge started: %s", self.info)

    async def close(self) -> None:
        """Stop the process (politely, then by force) and remove its scratch folder."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(Exception):
                process.stdin.write(b'{"op": "shutdown"}\n')
                await asyncio.wait_for(process.stdin.drain(), 5)
                await asyncio.wait_for(process.wait(), 5)
            if process.returncode is None:
                process.kill()
                await process.wait()
        if self._home:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    async def _send(self, request: dict[str, Any]) -> Any:
        process = self._process
        self._ids += 1
        request = {**request, "id": self._ids}
        try:
            process.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            await process.stdin.drain()
            line = await asyncio.wait_for(process.stdout.readline(), self._timeout_s)
        except asyncio.TimeoutError:
            await self._kill()
            raise BridgeError(
                f"the BFCL bridge did not answer {request['op']!r} within {self._timeout_s:g} s"
            ) from None
        except (OSError, ValueError, ConnectionError) as exc:
            await self._kill()
            raise BridgeError(f"the BFCL bridge connection failed during {request['op']!r}: {exc}") from None
        if not line:
            code = await process.wait()
            self._process = None
            raise BridgeError(f"the BFCL bridge exited (status {code}) during {request['op']!r}")
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            await self._kill()
            raise BridgeError(f"the BFCL bridge sent a malformed reply: {line[:200]!r}") from None
        if not reply.get("ok"):
            if reply.get("id") is None:  # it could not even load its API module
                await self._kill()
                raise BridgeUnavailable(f"the BFCL bridge cannot start: {reply.get('error')}")
            raise BridgeError(f"the BFCL bridge failed on {request['op']!r}: {reply.get('error')}")
        if reply.get("id") != request["id"]:
            await self._kill()
            raise BridgeError(f"the BFCL bridge answered request {reply.get('id')} instead of {request['id']}")
        return reply.get("result")

    async def request(self, op: str, **fields: Any) -> Any:
        """One request (serialised with the others); restarts a bridge that died."""
        await self.start()
        async with self._lock:
            if self._process is None or self._process.returncode is not None:
                await self.start()
            return await self._send({"op": op, **fields})

    async def open_session(self, entry: Mapping[str, Any]) -> str:
        """Create the API instances of one episode (``entry``: id, initial_config, involved_classes, long_context)."""
        return await self.request("open", entry=dict(entry))

    async def execute(self, session: str, calls: Sequence[str]) -> list[str]:
        """Execute call strings in a session; returns the result strings the model sees."""
        result = await self.request("execute", session=session, calls=list(calls))
        results = result.get("results") if isinstance(result, dict) else None
        if not isinstance(results, list) or len(results) != len(calls):
            raise BridgeError(f"the BFCL bridge returned {result!r:.200} for {len(calls)} calls")
        return results

    async def close_session(self, session: str) -> None:
        """Drop a session's instances (no-op if the bridge is gone)."""
        if self._process is not None and self._process.returncode is None:
            await self.request("close", session=session)

    async def check(
        self,
        entry: Mapping[str, Any],
        decoded: Sequence[Sequence[Sequence[str]]],
        ground_truth: Sequence[Sequence[str]],
    ) -> dict[str, Any]:
        """bfcl-eval's multi-turn verdict ``{valid, error_type, error_message, details}`` for decoded calls."""
        verdict = await self.request("check", entry=dict(entry), decoded=decoded, ground_truth=ground_truth)
        if not isinstance(verdict, dict) or not isinstance(verdict.get("valid"), bool):
            raise BridgeError(f"the BFCL bridge returned a malformed verdict {verdict!r:.200}")
        return verdict
