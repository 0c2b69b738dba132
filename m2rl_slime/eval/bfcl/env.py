"""`python -m m2rl_slime.eval bfcl-env DIR`: the isolated, pinned bfcl-eval venv the BFCL bridge runs in.

bfcl-eval pins numpy 1.26.4, tree-sitter 0.21.3 and many vendor SDKs, which must never enter slime's image.
The venv made here holds exactly what the multi-turn checker and the v3 API classes import: bfcl-eval itself
(installed without its dependencies) and mpmath; ``--full`` installs bfcl-eval with all its dependencies
instead. Packages come from PyPI or, with ``--wheelhouse``, from a local folder only. The folder is complete
only once `MARKER` (versions and the installed packages) is written; a half-built folder is rebuilt.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError

logger = logging.getLogger(__name__)

BFCL_EVAL = "bfcl-eval==2026.3.23"
MPMATH = "mpmath==1.3.0"  # the version bfcl-eval pins
MARKER = "m2rl_bfcl_env.json"
_CHECK = "import bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker, mpmath"


@dataclass(frozen=True, slots=True)
class EnvOptions:
    """Options of `create_env`: local wheels instead of PyPI, full dependencies, rebuild, interpreter."""

    wheelhouse: Path | None = None
    full: bool = False
    force: bool = False
    python: str = sys.executable


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"bfcl-env: {what} failed (exit {done.returncode}): {tail[0]}")
    return done.stdout


def _clear(folder: Path, force: bool) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ConfigError(f"bfcl-env: {folder} exists and is not a folder")
    if any(folder.iterdir()) and not (folder / "pyvenv.cfg").is_file():
        raise ConfigError(f"bfcl-env: {folder} is a non-empty folder that is not a venv; pass an empty or new folder")
    if force or not (folder / MARKER).is_file():
        shutil.rmtree(folder)


def create_env(folder: str | Path, options: EnvOptions | None = None) -> dict:
    """Create (or confirm) the bfcl-eval venv in `folder`; returns its marker record.

    Raises:
        ConfigError: the folder is unusable, or venv creation, installation or the import check failed.
    """
    options, folder = options or EnvOptions(), Path(folder).resolve()
    _clear(folder, options.force)
    marker = folder / MARKER
    if marker.is_file():
        record = json.loads(marker.read_text(encoding="utf-8"))
        if record.get("bfcl_eval") == BFCL_EVAL and record.get("full") == options.full:
            return record
        shutil.rmtree(folder)
    _run([options.python, "-m", "venv", str(folder)], "creating the venv")
    python = str(folder / "bin" / "python")
    source = ["--no-index", "--find-links", str(options.wheelhouse)] if options.wheelhouse else []
    deps = [] if options.full else ["--no-deps"]
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *source, *deps, BFCL_EVAL, MPMATH],
         "pip install")  # fmt: skip
    _run([python, "-I", "-c", _CHECK], "importing bfcl-eval's multi-turn checker")
    freeze = _run([python, "-m", "pip", "freeze", "--disable-pip-version-check"], "pip freeze").split()
    version = _run([python, "-c", "import platform; print(platform.python_version())"], "python --version").strip()
    record = {"bfcl_eval": BFCL_EVAL, "mpmath": MPMATH, "full": options.full, "python": version, "packages": freeze}
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(marker)
    return record
