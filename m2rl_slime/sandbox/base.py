"""The sandbox contract: `RunSpec` in, `RunResult` out, in SandboxFusion's `/run_code` JSON schema.

Request (`RunCodeRequest`): ``code, language, stdin, compile_timeout, run_timeout, memory_limit_MB,
files, fetch_files``. Response (`RunCodeResponse`): ``status`` (Success | Failed | SandboxError),
``message``, ``compile_result`` / ``run_result`` (``status`` Finished | Error | TimeLimitExceeded,
``execution_time``, ``return_code``, ``stdout``, ``stderr``), ``files``, ``executor_pod_name``.

Extensions a SandboxFusion server or client ignores: request keys ``cpu_timeout`` and
``compile_cpu_timeout`` (CPU-time limits of the run and the compilation; ``run_timeout`` and
``compile_timeout`` keep their SandboxFusion meaning, wall-clock seconds, and act as a backstop),
response keys ``cpu_time`` and ``truncated`` on a command result (CPU seconds used; stdout went past
the byte cap) and ``network_isolated`` on the run result (None when the server does not say, as a real
SandboxFusion does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import ConfigError, SandboxError

RunStatus = Literal["Success", "Failed", "SandboxError"]
CommandStatus = Literal["Finished", "Error", "TimeLimitExceeded"]
RUN_STATUSES = ("Success", "Failed", "SandboxError")
COMMAND_STATUSES = ("Finished", "Error", "TimeLimitExceeded")


class SandboxUnavailableError(SandboxError):
    """The sandbox is known to be down (circuit breaker open): the request was not sent."""


class SandboxConfigError(ConfigError):
    """The sandbox cannot run programs as configured (e.g. its interpreter does not run inside it): fix the setting.

    Not a `SandboxError`: retrying cannot help, so a reward stops the run with this one-line message
    instead of scoring every code sample 0.
    """


class SchemaError(ValueError):
    """A `/run_code` request or response does not follow the schema (the message names the field)."""


def _number(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def wall_backstop(cpu_seconds: float) -> float:
    """The wall-clock limit that goes with a CPU-time limit: generous, for programs that block (3x + 1 s)."""
    return 3.0 * cpu_seconds + 1.0


def _optional_number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if data.get(key) is None else _number(data, key, 0.0, where)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One program to run (SandboxFusion's `RunCodeRequest`).

    Attributes:
        code: The program text.
        language: ``python`` or ``cpp`` for our executor (a SandboxFusion fleet knows more).
        stdin: Text fed to the program's standard input (None = empty).
        compile_timeout: Wall-clock seconds allowed for compilation (compiled languages only).
        run_timeout: Wall-clock seconds allowed for the run (SandboxFusion's meaning).
        memory_limit_mb: Address-space limit in MiB (-1 = the server's default). JSON key
            ``memory_limit_MB``.
        files: Extra files for the working directory: relative path -> base64 content (None = empty).
        fetch_files: Relative paths returned base64-encoded in `RunResult.files` after the run.
        cpu_timeout: CPU seconds the run may use (its whole process tree); None = `run_timeout`. Sent as
            an extension key; a server that does not know it applies only `run_timeout`.
        compile_cpu_timeout: The same for compilation.
    """

    code: str
    language: str = "python"
    stdin: str | None = None
    compile_timeout: float = 10.0
    run_timeout: float = 10.0
    memory_limit_mb: int = -1
    files: Mapping[str, str | None] = field(default_factory=dict)
    fetch_files: tuple[str, ...] = ()
    cpu_timeout: float | None = None
    compile_cpu_timeout: float | None = None

    def to_json(self) -> dict[str, Any]:
        extensions = {k: v for k, v in (("cpu_timeout", self.cpu_timeout),
                                        ("compile_cpu_timeout", self.compile_cpu_timeout)) if v is not None}  # fmt: skip
        return {
            "code": self.code,
            "language": self.language,
            "stdin": self.stdin,
            "compile_timeout": self.compile_timeout,
            "run_timeout": self.run_timeout,
            "memory_limit_MB": self.memory_limit_mb,
            "files": dict(self.files),
            "fetch_files": list(self.fetch_files),
            **extensions,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "request") -> RunSpec:
        """Parse a `/run_code` request body; raises ValueError naming the bad field."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"{where}: expected a JSON object, got {type(data).__name__}")
        code, language, stdin = data.get("code"), data.get("language", "python"), data.get("stdin")
        if not isinstance(code, str):
            raise SchemaError(f"{where}.code: required string, got {type(code).__name__}")
        if not isinstance(language, str):
            raise SchemaError(f"{where}.language: expected a string, got {language!r}")
        if stdin is not None and not isinstance(stdin, str):
            raise SchemaError(f"{where}.stdin: expected a string or null, got {type(stdin).__name__}")
        memory = data.get("memory_limit_MB", -1)
        if memory is None:
            memory = -1
        if isinstance(memory, bool) or not isinstance(memory, int):
            raise SchemaError(f"{where}.memory_limit_MB: expected an integer, got {memory!r}")
        files = data.get("files") or {}
        if not isinstance(files, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in files.items()
        ):
            raise SchemaError(f"{where}.files: expected an object of path -> base64 string")
        fetch = data.get("fetch_files") or []
        if not isinstance(fetch, list) or not all(isinstance(p, str) for p in fetch):
            raise SchemaError(f"{where}.fetch_files: expected a list of paths")
        return cls(
            code=code,
            language=language,
            stdin=stdin,
            compile_timeout=_number(data, "compile_timeout", 10.0, where),
            run_timeout=_number(data, "run_timeout", 10.0, where),
            memory_limit_mb=memory,
            files=dict(files),
            fetch_files=tuple(fetch),
            cpu_timeout=_optional_number(data, "cpu_timeout", where),
            compile_cpu_timeout=_optional_number(data, "compile_cpu_timeout", where),
        )


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One command of a run (compile or run): SandboxFusion's `CommandRunResult`.

    `execution_time` is wall-clock seconds, `cpu_time` the CPU seconds of the command's whole process
    tree (None where the server does not report it).
    """

    status: CommandStatus
    execution_time: float | None = None
    return_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    cpu_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "execution_time": self.execution_time,
            "return_code": self.return_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "truncated": self.truncated,
            "cpu_time": self.cpu_time,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> CommandResult | None:
        if data is None:
            return None
        if not isinstance(data, Mapping) or data.get("status") not in COMMAND_STATUSES:
            raise SchemaError(
                f"{where}: expected a command result with status in {COMMAND_STATUSES}, got {data!r:.200}"
            )
        time, code, cpu = data.get("execution_time"), data.get("return_code"), data.get("cpu_time")
        return cls(
            status=data["status"],
            execution_time=float(time) if isinstance(time, (int, float)) else None,
            return_code=int(code) if isinstance(code, int) else None,
            stdout=data.get("stdout") or "",
            stderr=data.get("stderr") or "",
            truncated=bool(data.get("truncated", False)),
            cpu_time=float(cpu) if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) else None,
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one `RunSpec`: SandboxFusion's `RunCodeResponse`.

    Attributes:
        status: ``Success`` (every command finished with return code 0), ``Failed`` (a non-zero return
            code or a time limit), or ``SandboxError`` (the sandbox itself failed).
        message: Human-readable detail (empty on success).
        compile_result: The compile command (compiled languages only; None otherwise).
        run_result: The run command (None when compilation failed or the sandbox errored first).
        files: Fetched files: path -> base64 content.
        executor_pod_name: Which executor ran it (host:pid for ours).
        network_isolated: Whether the program ran without network access (None = not reported).
    """

    status: RunStatus
    message: str = ""
    compile_result: CommandResult | None = None
    run_result: CommandResult | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    executor_pod_name: str | None = None
    network_isolated: bool | None = None

    @property
    def timed_out(self) -> bool:
        return any(c is not None and c.status == "TimeLimitExceeded" for c in (self.compile_result, self.run_result))

    @property
    def truncated(self) -> bool:
        return any(c is not None and c.truncated for c in (self.compile_result, self.run_result))

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "compile_result": None if self.compile_result is None else self.compile_result.to_json(),
            "run_result": None if self.run_result is None else self.run_result.to_json(),
            "files": dict(self.files),
            "executor_pod_name": self.executor_pod_name,
            "network_isolated": self.network_isolated,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "response") -> RunResult:
        """Parse a `/run_code` response body; raises ValueError naming the bad field."""
        if not isinstance(data, Mapping) or data.get("status") not in RUN_STATUSES:
            raise SchemaError(f"{where}: expected an object with status in {RUN_STATUSES}, got {data!r:.200}")
        files = data.get("files") or {}
        if not isinstance(files, Mapping):
            raise SchemaError(f"{where}.files: expected an object, got {type(files).__name__}")
        isolated = data.get("network_isolated")
        return cls(
            status=data["status"],
            message=str(data.get("message") or ""),
            compile_result=CommandResult.from_json(data.get("compile_result"), f"{where}.compile_result"),
            run_result=CommandResult.from_json(data.get("run_result"), f"{where}.run_result"),
            files={str(k): str(v) for k, v in files.items()},
            executor_pod_name=data.get("executor_pod_name"),
            network_isolated=isolated if isinstance(isolated, bool) else None,
        )


@runtime_checkable
class Sandbox(Protocol):
    """A place that runs programs. Implementations: the embedded executor and the HTTP client."""

    async def run(self, spec: RunSpec) -> RunResult:
        """Run one program.

        Raises:
            SandboxUnavailableError: the sandbox is known to be down (fail fast, nothing sent).
            SandboxError: the sandbox failed as infrastructure after retries.
        """
        ...

    def describe(self) -> str:
        """Where programs run (a URL or ``embedded``), for logs and result details."""
        ...

    def stats(self) -> Mapping[str, Any]:
        """Counters: requests, retries, failures, unavailable, breaker state."""
        ...
