"""`load_dotted(path)`: import ``pkg.mod.attr`` and return ``attr``, the convention of slime's ``load_function``.

The one loader behind every dotted-path table of the package (verifiers, plugin settings classes,
sandbox backends, the hook index). Failures are configuration errors that name the path.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigError


def load_dotted(path: str) -> Any:
    """Import the module part of `path` and return its last attribute.

    Args:
        path: A dotted path such as ``"m2rl_slime.rewards.math_answer.verify"``.

    Returns:
        The named attribute (a function, class or value).

    Raises:
        ConfigError: `path` has no module part, its module cannot be imported (the import error is
            quoted), or the module has no such attribute. The message names `path`.
    """
    module_path, _, attr = path.rpartition(".") if isinstance(path, str) else ("", "", "")
    if not module_path or not attr:
        raise ConfigError(f"{path!r} is not a dotted path of the form package.module.name")
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise ConfigError(f"{path} is not importable ({type(exc).__name__}: {exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{path} is not importable (module {module_path} has no attribute {attr!r})") from None
