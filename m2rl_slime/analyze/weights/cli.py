"""``python -m m2rl_slime.analyze weights``: the command line over `run_weights`.

Every option flag is generated from a field of `WeightsOptions` (its name, type, default and help).
Exit status: 0 ok, 1 NaN/Inf found in an input (all numbers are still written) or an I/O failure,
2 bad input (one line on stderr), 130 interrupted (continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from typing import Any

from ...errors import ConfigError
from .config import WeightsOptions


def _flag_kwargs(name: str, tp: Any, default: Any, help_text: str) -> dict[str, Any]:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        tp = args[0]
    shown = "" if default is None or "default" in help_text else f" (default: {default})"
    kw: dict[str, Any] = {"default": default, "help": help_text + shown}
    if tp is bool:
        kw["action"] = "store_true" if default is False else argparse.BooleanOptionalAction
    elif typing.get_origin(tp) is typing.Literal:
        kw["choices"] = typing.get_args(tp)
    else:
        kw["type"] = tp
        kw["metavar"] = "N" if tp is int else name.upper()
    return kw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", metavar="DIR", required=True, help="the SFT checkpoint (HF safetensors)")
    parser.add_argument(
        "--expert", metavar="NAME=DIR", action="append", default=[], help="an RL expert (repeat; >= 2 for pairs)"
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="output directory")
    group = parser.add_argument_group("analysis options (fields of WeightsOptions)")
    hints = typing.get_type_hints(WeightsOptions)
    for f in dataclasses.fields(WeightsOptions):
        kw = _flag_kwargs(f.name, hints[f.name], f.default, f.metadata["help"])
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        group.add_argument("--" + f.name.replace("_", "-"), dest="opt_" + f.name, **kw)


def _experts(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--expert {item!r}: expected NAME=DIR")
        out.append((name, path))
    return out


def _summary(report: Any) -> str:
    from .report import table5

    t5 = table5(report.weights)
    groups = report.weights["table"]["groups"]
    lines = [statement for statement in t5["dtypes"].values()]
    for g in ("attention", "ffn"):
        if g in groups:
            dens = ", ".join(f"{n} {p:.3f}" for n, p in groups[g]["density"].items())
            lines.append(f"changed fraction, {g} ({t5['scope']}): {dens}")
    lines.append(f"Table 5 ({t5['scope']}): Jaccard [independent-mask reference] and exact cosine")
    cols = t5["columns"]
    lines.append(f"{'pair':24s} " + " ".join(f"{c:>14s}" for c in cols))
    rows = {(r["a"], r["b"], r["metric"]): r["values"] for r in t5["rows"]}
    for a, b in report.weights["pairs"]:
        j, ref, cos = rows[(a, b, "jaccard")], rows[(a, b, "jaccard_indep")], rows[(a, b, "cosine")]
        cells = [f"{_f(j[c])} [{_f(ref[c])}]" for c in cols]
        lines.append(f"{a + '-' + b:24s} " + " ".join(f"{x:>14s}" for x in cells))
        lines.append(f"{'  cosine':24s} " + " ".join(f"{_f(cos[c]):>14s}" for c in cols))
    lines.append("wrote " + ", ".join(p.name for p in (*report.files, *report.figures)) + f" to {report.out}")
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    from .analysis import run_weights

    raw = {f.name: getattr(args, "opt_" + f.name) for f in dataclasses.fields(WeightsOptions)}
    options = WeightsOptions(**raw)
    experts = _experts(args.expert)
    try:
        report = run_weights(args.base, experts, args.out, options)
    except KeyboardInterrupt:
        print("analyze weights: interrupted; continue with the same command and --resume", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"analyze weights: failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(_summary(report))
    if report.nonfinite:
        bad = report.weights["nonfinite"]["tensors"]
        first = next(iter(bad))
        print(
            f"analyze weights: {report.nonfinite} NaN/Inf element(s) in the inputs, first in {first} {bad[first]}; "
            "they are excluded from every count (see nonfinite in weights.json)",
            file=sys.stderr,
        )
        return 1
    return 0
