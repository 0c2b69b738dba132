"""`load_dotted(path)`: import ``pkg.mod.attr`` and return ``attr``, the convention of slime's ``load_function``.

The one loader behind every dotted-path table of the package (verifiers, plugin settings classes,
sandbox backends, the hook index), and `lazy_exports`, the one way a package exports names without
importing them. Failures are configuration errors that name the path.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
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


def lazy_exports(module: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a module whose names resolve from dotted paths on first access.

    A package exports its API without importing it: nothing in `table` is imported until it is used, and
    then it is cached in the module. Unknown names raise AttributeError, as for any module.

    Args:
        module: The module's ``__name__`` (it must be executing or imported).
        table: Exported name -> dotted path of the object.

    Example:
        In ``m2rl_slime/data/__init__.py``::

            __getattr__, __dir__ = lazy_exports(__name__, {"DataConfig": "m2rl_slime.data.config.DataConfig"})
    """
    namespace = sys.modules[module].__dict__

    def __getattr__(name: str) -> Any:
        path = table.get(name)
        if path is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = namespace[name] = load_dotted(path)
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__
