"""Generate `slime_flags.json`: every command-line flag slime's `train.py` accepts, from a real slime checkout.

slime parses `sys.argv` with several parsers (a pre-parse of the mode flags, the `--sglang-*` parser built
from SGLang's `ServerArgs`, and Megatron's parser extended with slime's own arguments), each of which ignores
what it does not know. A typo in a flag is therefore dropped silently at launch. The launcher checks every
rendered flag against the table this module writes, so the check needs no slime at launch time.

The table is collected by letting slime's real `parse_args()` build its parsers and recording each parser's
option strings the moment it starts parsing; the main (Megatron + slime) parser stops the run before any
validation. Run it in an environment where slime imports (see ``docs/launch.md``)::

    PYTHONPATH=$SLIME_SRC:$MEGATRON_SRC:. python -m m2rl_slime.launch.flags_gen

It is a maintenance tool, not part of a launch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).with_name("slime_flags.json")
# A flag only the final (Megatron + slime) parser defines; seeing it means every parser has been built.
_MAIN_PARSER_MARKER = "--custom-config-path"
_PLAIN_TYPES = {int: "int", float: "float", str: "str"}


class _Collected(Exception):
    """Raised from inside slime's parse once the main parser has been recorded."""


def _describe(action: argparse.Action) -> dict[str, Any]:
    """The parts of an argparse action the launcher validates values against.

    ``kind`` is ``switch`` (takes no value), ``append`` (may repeat) or ``value``; ``nargs`` is argparse's
    (absent = exactly one value); ``type`` is ``int``/``float``/``str`` or the converter's name; ``choices``
    is the allowed values when argparse restricts them.
    """
    if action.nargs == 0:
        entry: dict[str, Any] = {"kind": "switch"}
    elif isinstance(action, argparse._AppendAction):
        entry = {"kind": "append"}
    else:
        entry = {"kind": "value"}
    if action.nargs not in (None, 0):
        entry["nargs"] = action.nargs
    if action.nargs != 0:
        if action.type in _PLAIN_TYPES:
            entry["type"] = _PLAIN_TYPES[action.type]
        elif action.type is not None:
            entry["type"] = getattr(action.type, "__name__", type(action.type).__name__)
    if action.choices is not None:
        choices = list(action.choices)
        if all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in choices):
            entry["choices"] = choices
    return entry


def collect_flags() -> dict[str, dict[str, Any]]:
    """Run slime's `parse_args()` far enough to build every parser; return flag -> description.

    Must run where `slime.utils.arguments` imports (slime, Megatron-LM and sglang importable).
    """
    import slime.utils.arguments as slime_arguments

    flags: dict[str, dict[str, Any]] = {}
    original = argparse.ArgumentParser.parse_known_args

    def recording(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        if args is None:  # slime's parsers read sys.argv
            for option, action in self._option_string_actions.items():
                if option.startswith("--"):
                    flags.setdefault(option, _describe(action))
            if _MAIN_PARSER_MARKER in self._option_string_actions:
                raise _Collected
        return original(self, args, namespace)

    saved_argv = sys.argv
    argparse.ArgumentParser.parse_known_args = recording  # type: ignore[method-assign]
    sys.argv = ["train.py"]
    try:
        slime_arguments.parse_args()
    except _Collected:
        pass
    else:
        raise RuntimeError(f"slime's parse_args() never built a parser defining {_MAIN_PARSER_MARKER}")
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
        sys.argv = saved_argv
    flags.pop("--help", None)
    return dict(sorted(flags.items()))


def collect_eval_keys() -> dict[str, list[str]]:
    """Keys slime accepts in an ``--eval-config`` dataset entry and in its ``defaults`` mapping."""
    from dataclasses import fields

    from slime.utils import eval_config

    dataset = sorted(f.name for f in fields(eval_config.EvalDatasetConfig))
    specs = {**eval_config.DATASET_RUNTIME_SPECS, **eval_config.DATASET_SAMPLE_SPECS}
    defaults = sorted(set(dataset) | {key for spec in specs.values() for key in spec["default_keys"]})
    return {"dataset": dataset, "defaults": defaults}


def _git_commit(path: Path) -> str:
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"cannot read the git commit of {path}: {result.stderr.strip()}")
    return result.stdout.strip()


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _checkout_of(module_name: str) -> Path:
    """The checkout holding `module_name`, a module two packages deep (e.g. ``slime.utils.arguments``)."""
    module = sys.modules[module_name]
    return Path(module.__file__).resolve().parents[2]


def write_table(flags: dict[str, dict[str, Any]], out: Path, stamp: dict[str, Any]) -> None:
    """Write the table atomically (temp file, then rename), one flag per line for readable diffs."""
    lines = ["{"]
    for key, value in stamp.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)},")
    lines.append('  "flags": {')
    items = [f"    {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in flags.items()]
    lines.append(",\n".join(items))
    lines.append("  }")
    lines.append("}")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


def main(argv: Iterable[str] | None = None) -> int:
    """Generate the flag table from the slime found on PYTHONPATH."""
    parser = argparse.ArgumentParser(
        prog="python -m m2rl_slime.launch.flags_gen",
        description="Regenerate slime_flags.json from the slime + Megatron-LM checkouts on PYTHONPATH.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {DEFAULT_OUT.name})")
    opts = parser.parse_args(list(argv) if argv is not None else None)
    flags = collect_flags()
    slime_dir = _checkout_of("slime.utils.arguments")
    megatron_dir = _checkout_of("megatron.training.arguments")
    stamp = {
        "_generated_by": "python -m m2rl_slime.launch.flags_gen (do not edit by hand)",
        "slime_commit": _git_commit(slime_dir),
        "megatron_commit": _git_commit(megatron_dir),
        "sglang_version": _version("sglang"),
        "sglang_router_version": _version("sglang-router"),
        "eval_config_keys": collect_eval_keys(),
    }
    write_table(flags, opts.out, stamp)
    print(f"wrote {len(flags)} flags to {opts.out} (slime {stamp['slime_commit'][:9]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
