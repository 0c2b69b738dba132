"""``python -m m2rl_slime.merge`` / ``m2rl-merge``: the command line over `run_merge`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import traceback
import typing
from typing import Any

from ..errors import ConfigError, M2RLError
from .config import PARAM_ALIASES, ExpertSpec, MergeOptions, build_config, load_recipe
from .methods import METHODS

log = logging.getLogger(__name__)
PROG = "m2rl-merge"
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, not usage + message
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def parse_size(text: str) -> int:
    """'2GB' -> 2e9, '512MiB' -> 512*2**20, '1000' -> 1000."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 2GB, 500MB, 1GiB)")
    power = " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)


def _param_fields() -> dict[str, tuple[str, Any, dict[str, Any]]]:
    """flag -> (field name, annotation, metadata) over every method's parameters."""
    out: dict[str, tuple[str, Any, dict[str, Any]]] = {}
    for method in METHODS.values():
        hints = typing.get_type_hints(method.params)
        for f in dataclasses.fields(method.params):
            flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
            out.setdefault(flag, (f.name, hints[f.name], dict(f.metadata)))
    return out


def _epilog() -> str:
    lines = ["methods (delta_i = theta_i - theta_b, computed per tensor in fp32):"]
    for name, m in METHODS.items():
        lines.append(f"\n  {name}: {m.summary}")
        lines += ["    " + line for line in m.formula.splitlines()]
        params = ", ".join(
            f.metadata.get("flag", "--" + f.name.replace("_", "-")) + f"={f.default}"
            for f in dataclasses.fields(m.params)
        )
        lines.append(f"    parameters: {params}")
    lines.append(
        "\nmergekit density = 1 - drop. Until a merge is complete and validated it lives in OUT/incomplete_merge/"
        "\n(never loadable); --resume continues from there. Exit status: 0 ok, 1 merge/validation/I-O failure,"
        "\n2 bad input, 130 interrupted."
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render --help in docs)."""
    p = _Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(),
        description="Streaming, exact, resumable merge of HF safetensors experts into their base model.",
    )
    p.add_argument("--config", metavar="RECIPE", help="YAML recipe (ours, or mergekit-style with merge_method)")
    p.add_argument("--base", metavar="DIR", help="base (SFT) checkpoint; task vectors are relative to it")
    p.add_argument("--expert", metavar="NAME=DIR", action="append", default=[], help="an expert (repeat)")
    p.add_argument("--weight", metavar="NAME=W", action="append", default=[], help="expert weight (default 1)")
    p.add_argument("--method", choices=sorted(METHODS), help="merge method (formulas below)")
    p.add_argument("--out", metavar="DIR", help="output directory (empty or new, unless --resume)")
    g = p.add_argument_group("method parameters (only those of the chosen method are accepted)")
    for flag, (name, tp, meta) in _param_fields().items():
        kw: dict[str, Any] = {"dest": "p_" + name, "default": None, "help": meta.get("help")}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is typing.Literal:
            kw["choices"] = typing.get_args(tp)
        else:
            kw["type"] = float
            kw["metavar"] = flag.lstrip("-").upper().replace("-", "_")
        g.add_argument(flag, *(["--dare-drop"] if flag == "--drop" else []), **kw)
    r = p.add_argument_group("run")
    r.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], help="output dtype (default bf16; compute is fp32)")
    r.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    r.add_argument("--seed", type=int, help="DARE seed (default 0)")
    r.add_argument("--threads", type=int, default=0, help="CPU compute threads (default: all cores)")
    r.add_argument("--resume", action="store_true", help="continue an interrupted merge from OUT/incomplete_merge/")
    r.add_argument("--dry-run", action="store_true", help="check the inputs and print the plan; write nothing")
    r.add_argument("--copy-from", metavar="SRC", help="config/tokenizer source: base (default), an expert, a dir")
    r.add_argument("--shard-size", type=parse_size, default=2_000_000_000, help="output shard size (default 2GB)")
    r.add_argument("--chunk-elems", type=int, default=1 << 25, help="elements per read chunk (multiple of 65536)")
    r.add_argument("--block-elems", type=int, default=1 << 18, help="elements per compute block (multiple of 65536)")
    r.add_argument("--read-ahead", type=int, default=1, help="read-ahead budget in chunks (default 1)")
    r.add_argument(
        "--fingerprint",
        choices=["stat", "content"],
        default="stat",
        help="input fingerprints: headers+sizes+mtimes (stat) or sha256 of every byte (content)",
    )
    r.add_argument(
        "--warn-rounding",
        type=float,
        default=0.1,
        help="warn when more than this fraction of an expert's changes rounds back to the base",
    )
    r.add_argument("--no-scan", action="store_true", help="skip the NaN/Inf scan of the written shards")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return p


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"--{what} {item!r}: expected NAME=VALUE")
        out.append((name, value))
    return out


def _fields(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    fields, warnings = load_recipe(args.config) if args.config else ({}, [])
    for key in ("method", "base", "seed", "dtype", "copy_from"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.expert:
        fields["experts"] = tuple(ExpertSpec(n, d) for n, d in _pairs(args.expert, "expert"))
    experts = [e if isinstance(e, ExpertSpec) else ExpertSpec(**e) for e in fields.get("experts", ())]
    for name, value in _pairs(args.weight, "weight"):
        idx = [i for i, e in enumerate(experts) if e.name == name]
        if not idx:
            raise ConfigError(f"--weight {name}: no expert named {name!r}")
        try:
            experts[idx[0]] = dataclasses.replace(experts[idx[0]], weight=float(value))
        except ValueError:
            raise ConfigError(f"--weight {name}={value}: not a number") from None
    fields["experts"] = tuple(experts)
    fields["params"] = {PARAM_ALIASES.get(k, k): v for k, v in dict(fields.get("params") or {}).items()}
    fields["params"].update(_cli_params(args, fields.get("method")))
    return fields, warnings


def _cli_params(args: argparse.Namespace, method: str | None) -> dict[str, Any]:
    given = {k[2:]: v for k, v in vars(args).items() if k.startswith("p_") and v is not None}
    if not given or method not in METHODS:
        return given
    valid = {
        f.name: f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        for f in dataclasses.fields(METHODS[method].params)
    }
    for name in given:
        if name not in valid:
            flag = "--" + ("lambda" if name == "lam" else name.replace("_", "-"))
            raise ConfigError(
                f"{flag} does not apply to method {method} (its parameters: {', '.join(valid.values()) or 'none'})"
            )
    return given


def _options(args: argparse.Namespace) -> MergeOptions:
    from ..config import parse_dataclass

    raw = {
        "device": args.device,
        "threads": args.threads,
        "chunk_elems": args.chunk_elems,
        "block_elems": args.block_elems,
        "shard_bytes": args.shard_size,
        "read_ahead": args.read_ahead,
        "resume": args.resume,
        "scan": not args.no_scan,
        "progress": not args.no_progress,
        "warn_rounding": args.warn_rounding,
        "fingerprint": args.fingerprint,
    }
    return parse_dataclass(MergeOptions, raw, "options")


def _run(args: argparse.Namespace) -> int:
    fields, warnings = _fields(args)
    config = build_config(fields, args.config or "command line")
    options = _options(args)
    for w in warnings:
        log.warning("mergekit config: %s", w)
    if args.dry_run:
        from .describe import describe
        from .plan import build_plan

        print(describe(build_plan(config, options)))
        return 0
    if not args.out:
        raise ConfigError("--out is required (or use --dry-run)")
    from .core import run_merge

    report = run_merge(config, args.out, options, notes=warnings)
    gb = report.bytes_written / 1e9
    print(
        f"merged {config.method} -> {report.out} in {report.seconds:.1f} s ({gb:.2f} GB written); "
        f"manifest: {report.out / 'merge_manifest.json'}"
    )
    for name, s in report.manifest["statistics"]["experts"].items():
        print(
            f"  {name}: changed {s['changed_fraction']:.2%} of weights, {s['vanished_fraction']:.1%} of those "
            f"left no trace, {s['rounded_back_fraction']:.1%} rounded back to the base"
        )
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad input, 130 interrupted). Every error is
    one line on stderr."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s"
    )
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (M2RLError, OSError) as exc:
        print(f"{PROG}: failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; continue with --resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line (the traceback with -v)
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (rerun with -v for the traceback)"
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
        return 1
