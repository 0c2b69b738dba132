"""`get_sandbox(config)`: the process-wide shared backend for a code config.

Backends, chosen by `config.sandbox_url` (never a silent fallback from one to the other):

- ``embedded`` (``sandbox_url: null``): a private sandbox server started on first use;
- ``http`` (``sandbox_url: http://host:port`` or ``unix:///path``): our server or a SandboxFusion fleet.

One backend instance per distinct backend-relevant settings, shared by every event loop and thread.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from .._dotted import load_dotted
from .base import Sandbox
from .client import ClientSettings

# Backend name -> dotted path of its factory (imported lazily).
BACKENDS: dict[str, str] = {
    "embedded": "m2rl_slime.sandbox.embedded.EmbeddedSandbox",
    "http": "m2rl_slime.sandbox.client.FusionClient",
}

_CLIENT_FIELDS = (
    "max_in_flight", "retries", "backoff_s", "backoff_max_s", "request_slack_s", "breaker_failures", "breaker_reset_s",
)  # fmt: skip
_EXECUTOR_FIELDS = ("workers", "isolation", "memory_limit_mb", "output_limit_mb", "python")

_cache: dict[tuple[Any, ...], Sandbox] = {}
_lock = threading.Lock()


def backend_name(config: Any) -> str:
    """``embedded`` when `config.sandbox_url` is None, else ``http``."""
    return "embedded" if config.sandbox_url is None else "http"


def _client_settings(config: Any) -> ClientSettings:
    return ClientSettings(**{name: getattr(config, name) for name in _CLIENT_FIELDS})


def _build(name: str, config: Any) -> Sandbox:
    factory = load_dotted(BACKENDS[name])
    if name == "http":
        return factory(config.sandbox_url, _client_settings(config))
    from .local import ExecutorSettings

    settings = ExecutorSettings(**{name: getattr(config, name) for name in _EXECUTOR_FIELDS})
    longest = max(settings.max_timeout_s, config.run_timeout_s, config.compile_timeout_s)
    settings = dataclasses.replace(settings, max_timeout_s=longest)
    return factory(settings, _client_settings(config))


def get_sandbox(config: Any) -> Sandbox:
    """The shared backend for `config` (a `CodeConfig` or any object with its sandbox fields).

    Args:
        config: Reads `sandbox_url`, the client fields (max_in_flight, retries, backoff_s, backoff_max_s,
            request_slack_s, breaker_failures, breaker_reset_s) and, for the embedded backend, workers,
            isolation, memory_limit_mb, output_limit_mb and python.

    Returns:
        A `Sandbox`; the same object for every call with equal settings in this process.
    """
    name = backend_name(config)
    fields = _CLIENT_FIELDS + (_EXECUTOR_FIELDS if name == "embedded" else ())
    longest = max(120.0, config.run_timeout_s, config.compile_timeout_s) if name == "embedded" else None
    key = (name, config.sandbox_url, longest, *(getattr(config, f) for f in fields))
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            backend = _cache[key] = _build(name, config)
        return backend


def shutdown_all() -> None:
    """Stop every embedded server this process started (also done automatically at exit)."""
    with _lock:
        backends = list(_cache.values())
        _cache.clear()
    for backend in backends:
        stop = getattr(backend, "shutdown", None)
        if callable(stop):
            stop()
