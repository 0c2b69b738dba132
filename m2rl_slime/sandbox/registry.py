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

from .base import Sandbox
from .client import ClientSettings
from .settings import ExecutorSettings

# Backend name -> dotted path of its factory (imported lazily).
BACKENDS: dict[str, str] = {
    "embedded": "m2rl_slime.sandbox.embedded.EmbeddedSandbox",
    "http": "m2rl_slime.sandbox.client.FusionClient",
}

_CLIENT_FIELDS = tuple(f.name for f in dataclasses.fields(ClientSettings))
_EXECUTOR_FIELDS = tuple(f.name for f in dataclasses.fields(ExecutorSettings))

_cache: dict[tuple[Any, ...], Sandbox] = {}
_lock = threading.Lock()


def backend_name(config: Any) -> str:
    """``embedded`` when `config.sandbox_url` is None, else ``http``."""
    return "embedded" if config.sandbox_url is None else "http"


def _shared(config: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The settings `config` carries under the same names (a field of the settings class it lacks keeps its default)."""
    return {name: getattr(config, name) for name in names if hasattr(config, name)}


def _client_settings(config: Any) -> ClientSettings:
    return ClientSettings(**_shared(config, _CLIENT_FIELDS))


def _executor_settings(config: Any) -> ExecutorSettings:
    settings = ExecutorSettings(**_shared(config, _EXECUTOR_FIELDS))
    longest = max(settings.max_timeout_s, config.run_timeout_s, config.compile_timeout_s)
    return dataclasses.replace(settings, max_timeout_s=longest)


def _build(name: str, config: Any) -> Sandbox:
    from ..rewards.registry import load_dotted

    factory = load_dotted(BACKENDS[name])
    if name == "http":
        return factory(config.sandbox_url, _client_settings(config))
    return factory(_executor_settings(config), _client_settings(config))


def get_sandbox(config: Any) -> Sandbox:
    """The shared backend for `config` (a `CodeConfig` or any object with its sandbox fields).

    Args:
        config: Reads `sandbox_url`, `run_timeout_s`, `compile_timeout_s` and every field it shares by name
            with `ClientSettings` and (embedded backend) `ExecutorSettings`.

    Returns:
        A `Sandbox`; the same object for every call with equal settings in this process.
    """
    name = backend_name(config)
    executor = _executor_settings(config) if name == "embedded" else None
    key = (name, config.sandbox_url, executor, _client_settings(config))
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
